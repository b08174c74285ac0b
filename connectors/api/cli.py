"""`urbanflow api serve` and `urbanflow partners add|list|revoke`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
    """Register a partner and print its API key. The key is shown once and stored hashed."""
    store = PartnerStore(ApiSettings.from_env().partners_db)
    partner, key = store.add(slug, source)
    console.print(
        f"partner {partner.slug} may write sources {', '.join(partner.sources)}; "
        f"its key (shown once, store it now) is on stdout",
        highlight=False,
    )
    typer.echo(key)


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
    """Revoke a partner's key; a running API refuses it within UF_API_KEY_CACHE_S seconds."""
    partner = PartnerStore(ApiSettings.from_env().partners_db).revoke(slug)
    out.print(f"partner {partner.slug}: key {partner.key_id}… revoked at {partner.revoked_at}")
