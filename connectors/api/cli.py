"""`urbanflow api serve` and `urbanflow partners add|list|revoke|superset-users`.

A partner is one command: `partners add` issues its API key and makes its Superset user (role
Partner, row-level security on its own rows) through `connectors.superset`; `partners revoke`
disables both. Superset is optional: without it the key is still issued and one line says which
command makes the user later.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors import superset
from connectors.api.partners import PartnerStore
from connectors.settings import ApiSettings

api_app = typer.Typer(help="The partner push API (FastAPI).", no_args_is_help=True)
partners_app = typer.Typer(
    help="Partners of the push API: their keys and sources.", no_args_is_help=True
)

# No emoji codes: a source like urn:partner:x:kenya: must print as typed, not as a flag.
console = Console(stderr=True, soft_wrap=True, emoji=False)
out = Console(soft_wrap=True, emoji=False)


@api_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (UF_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (UF_API_PORT)")] = None,
) -> None:
    """Run the API with uvicorn (one worker): POST /v1/events, POST /v1/files, docs at /docs."""
    # Imported here: FastAPI and uvicorn take a while to import and no other command needs them.
    import uvicorn

    from connectors.api.app import create_app

    settings = ApiSettings.from_env()
    app = create_app(settings)
    # Our own log line per request (logger connectors.api.service, INFO) names the partner and the
    # counts; uvicorn's access log would only repeat it.
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        workers=1,
        access_log=False,
        log_level="info",
    )


@partners_app.command("add")
def partners_add(
    slug: Annotated[str, typer.Argument(help="Short lowercase name, e.g. acme-ngo")],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Allowed CloudEvent source, urn:partner:<slug> or under urn:partner:<slug>: "
            "(repeatable; a trailing ':' allows every source under it). "
            "Default: urn:partner:<slug> and urn:partner:<slug>:",
        ),
    ] = None,
) -> None:
    """Register a partner, print its API key (shown once, stored hashed) and make its Superset
    user (role Partner, its own rows only)."""
    settings = ApiSettings.from_env()
    partner, key = PartnerStore(settings.partners_db).add(slug, source)
    console.print(
        f"partner {partner.slug} may write sources {', '.join(partner.sources)}; "
        f"its key (shown once, store it now) is on stdout",
        highlight=False,
    )
    typer.echo(key)
    _superset_user(settings, partner.slug)


def _superset_user(settings: ApiSettings, slug: str) -> bool:
    return _report_superset(slug, superset.add_partner_user(settings.base, slug), "created")


def _disable_superset_user(settings: ApiSettings, slug: str) -> bool:
    return _report_superset(slug, superset.disable_partner_user(settings.base, slug), "disabled")


def _report_superset(slug: str, outcome: superset.SupersetStep, verb: str) -> bool:
    """One line on what Superset did for the partner, or how to catch up when it could not."""
    if outcome.ok:
        console.print(f"partner {slug}: Superset {outcome.detail}", highlight=False)
    else:
        console.print(
            f"partner {slug}: Superset user not {verb} ({outcome.detail}); "
            f"run `{superset.LATER_COMMAND}` once Superset is set up",
            highlight=False,
        )
    return outcome.ok


@partners_app.command("list")
def partners_list() -> None:
    """Every partner with its sources and key id (never the key)."""
    store = PartnerStore(ApiSettings.from_env().partners_db)
    table = Table("partner", "sources", "key id", "created", "revoked")
    for column in table.columns:
        column.overflow = "fold"
    partners = store.list()
    for p in partners:
        table.add_row(p.slug, "\n".join(p.sources), p.key_id, p.created_at, p.revoked_at or "-")
    out.print(table)
    out.print(f"partners: {len(partners)} in {store.path}")


@partners_app.command("revoke")
def partners_revoke(slug: str) -> None:
    """Revoke a partner's key (a running API refuses it within UF_API_KEY_CACHE_S seconds) and
    disable its Superset user and row-level security filter."""
    settings = ApiSettings.from_env()
    partner = PartnerStore(settings.partners_db).revoke(slug)
    out.print(f"partner {partner.slug}: key {partner.key_id}… revoked at {partner.revoked_at}")
    _disable_superset_user(settings, partner.slug)


@partners_app.command("superset-users")
def partners_superset_users() -> None:
    """Bring Superset in line with the registry: a user for every active partner, revoked ones
    disabled (what `partners add|revoke` do, for when Superset was not set up then)."""
    settings = ApiSettings.from_env()
    partners = PartnerStore(settings.partners_db).list()
    done = sum(
        _disable_superset_user(settings, p.slug)
        if p.revoked_at
        else _superset_user(settings, p.slug)
        for p in partners
    )
    out.print(f"superset: {done} of {len(partners)} partners in line with {settings.partners_db}")
    if done < len(partners):
        raise typer.Exit(1)
