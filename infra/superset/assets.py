"""Superset assets as code: `sync` imports the bundle folder superset/, `export` writes it back.

Runs inside .venv-superset with the environment supersetctl exports (`supersetctl sync|export`).

- **sync** reads every YAML file of the bundle, fills `${UF_SERVING_PATH}` (the only template
  variable, in database URIs) from the environment, zips it (kept at `$UF_SUPERSET_STATE/bundle.zip`
  for inspection) and imports it with Superset's *assets* importer, which overwrites databases,
  datasets, charts and dashboards by UUID. (`superset import-dashboards` would be the obvious call,
  but it imports charts, datasets and databases with `overwrite=False`: a chart changed in git would
  never reach a Superset that already has it.) Importing the same bundle twice changes nothing.
- **export** exports every asset and writes the folder back *normalized*, so that a re-export
  without changes gives no diff: keys sorted, one file per asset named after it (no ids in file
  names), no timestamp, no database ids (chart `params.datasource/slice_id`, saved query contexts),
  dashboard chart ids renumbered 1..n in layout order (the importer maps them to real ids through
  each chart's UUID), and the serving path templated back to `${UF_SERVING_PATH}`.
- **roles** (also the last step of sync) provisions superset/roles.yml: the Analyst and Partner
  roles with exactly the listed permissions, dashboard roles (DASHBOARD_RBAC), and the default-deny
  Base row-level security filter; **partner-user <slug>** makes one partner's user, its own role
  and its Regular RLS filter (`partner_slug = '<slug>'`), with a password generated once into
  `$UF_VAR_DIR/superset/partners/<slug>.password` (`ensure_partner_user`); `urbanflow partners
  add` calls it. **partner-disable <slug>** (`urbanflow partners revoke`) deactivates that user,
  takes its roles and deletes its RLS filter and password file; a later partner-user restores all.
- **analyst-user <name>** makes an analyst's user (role Analyst), password generated once into
  `$UF_VAR_DIR/superset/users/<name>.password`.

Users are written straight into the metadata database, so these commands work whether or not the
server runs; they need the metadata set up (`supersetctl start` once) and the bundle synced.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import secrets
import string
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO / "superset"
ASSET_DIRS = ("databases", "datasets", "charts", "dashboards")
TEMPLATE_VARIABLES = ("UF_SERVING_PATH",)
BUNDLE_ROOT = "urbanflow_bundle"
ROLES_FILE = "roles.yml"
#: As connectors.reference.PARTNER_SLUG_PATTERN (this module runs in .venv-superset, without it).
PARTNER_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


class BundleError(Exception):
    """A bundle file that cannot be read or templated; the message names the file."""


# ---------------------------------------------------------------- pure logic (unit-tested)


def file_stem(name: str) -> str:
    """File name of an asset: its name with every non-alphanumeric run turned into `_`."""
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_") or "unnamed"


def read_bundle(bundle: Path) -> dict[str, str]:
    """metadata.yaml and every YAML asset under the bundle's folders, as {relative path: text}."""
    if not (bundle / "metadata.yaml").is_file():
        raise BundleError(f"{bundle}/metadata.yaml missing: is {bundle} a Superset bundle?")
    files = {"metadata.yaml": (bundle / "metadata.yaml").read_text()}
    for folder in ASSET_DIRS:
        for path in sorted((bundle / folder).rglob("*.yaml")):
            files[path.relative_to(bundle).as_posix()] = path.read_text()
    return files


def template(files: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """Fill `${UF_SERVING_PATH}` in the database files; any other `${...}` is an error."""
    out = {}
    for name, text in files.items():
        if name.startswith("databases/"):
            try:
                text = string.Template(text).substitute(
                    {k: env[k] for k in TEMPLATE_VARIABLES if k in env}
                )
            except (KeyError, ValueError) as exc:
                raise BundleError(
                    f"superset/{name}: template variable {exc} is not set; the bundle may use only "
                    f"{', '.join('${' + v + '}' for v in TEMPLATE_VARIABLES)} "
                    "(set it in the environment)"
                ) from exc
        out[name] = text
    return out


def to_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in sorted(files):
            bundle.writestr(f"{BUNDLE_ROOT}/{name}", files[name])
    return buffer.getvalue()


def _chart_ids_in_layout(position: dict[str, Any]) -> list[int]:
    """Chart ids in layout order (depth-first from ROOT_ID), each once."""
    seen: list[int] = []

    def walk(node_id: str) -> None:
        node = position.get(node_id)
        if not isinstance(node, dict):
            return
        if node.get("type") == "CHART":
            chart_id = node.get("meta", {}).get("chartId")
            if isinstance(chart_id, int) and chart_id not in seen:
                seen.append(chart_id)
        for child in node.get("children", []):
            walk(child)

    walk("ROOT_ID")
    for node in position.values():  # charts outside the tree (orphans) keep a stable number too
        if isinstance(node, dict) and node.get("type") == "CHART":
            chart_id = node.get("meta", {}).get("chartId")
            if isinstance(chart_id, int) and chart_id not in seen:
                seen.append(chart_id)
    return seen


def _renumber(value: Any, id_map: dict[int, int]) -> Any:
    return id_map.get(value, value) if isinstance(value, int) else value


def normalize_dashboard(config: dict[str, Any]) -> dict[str, Any]:
    """Chart ids become 1..n in layout order wherever the dashboard refers to them."""
    position = config.get("position") or {}
    id_map = {old: new for new, old in enumerate(_chart_ids_in_layout(position), 1)}
    for node in position.values():
        if isinstance(node, dict) and node.get("type") == "CHART":
            node["meta"]["chartId"] = _renumber(node["meta"].get("chartId"), id_map)
    metadata = config.get("metadata") or {}
    for native_filter in metadata.get("native_filter_configuration", []):
        scope = native_filter.get("scope") or {}
        if "excluded" in scope:
            scope["excluded"] = sorted(_renumber(i, id_map) for i in scope["excluded"])
        if "chartsInScope" in native_filter:
            native_filter["chartsInScope"] = sorted(
                _renumber(i, id_map) for i in native_filter["chartsInScope"]
            )
        for target in native_filter.get("targets", []):
            target.pop("datasetId", None)
    if "chart_configuration" in metadata:
        fixed = {}
        for key, chart_config in metadata["chart_configuration"].items():
            new_id = id_map.get(int(key), int(key))
            if isinstance(chart_config, dict):
                chart_config["id"] = new_id
                cross = chart_config.get("crossFilters") or {}
                if "chartsInScope" in cross:
                    cross["chartsInScope"] = sorted(
                        _renumber(i, id_map) for i in cross["chartsInScope"]
                    )
                scope = cross.get("scope")
                if isinstance(scope, dict) and "excluded" in scope:
                    scope["excluded"] = sorted(_renumber(i, id_map) for i in scope["excluded"])
            fixed[str(new_id)] = chart_config
        metadata["chart_configuration"] = dict(sorted(fixed.items(), key=lambda kv: int(kv[0])))
    global_config = metadata.get("global_chart_configuration") or {}
    if "chartsInScope" in global_config:
        global_config["chartsInScope"] = sorted(
            _renumber(i, id_map) for i in global_config["chartsInScope"]
        )
    scope = global_config.get("scope")
    if isinstance(scope, dict) and "excluded" in scope:
        scope["excluded"] = sorted(_renumber(i, id_map) for i in scope["excluded"])
    if "timed_refresh_immune_slices" in metadata:
        metadata["timed_refresh_immune_slices"] = sorted(
            _renumber(i, id_map) for i in metadata["timed_refresh_immune_slices"]
        )
    if "expanded_slices" in metadata:
        metadata["expanded_slices"] = {
            str(id_map.get(int(k), int(k))): v for k, v in metadata["expanded_slices"].items()
        }
    for key in ("positions", "filter_scopes", "default_filters"):
        if not metadata.get(key):
            metadata.pop(key, None)
    return config


def normalize_chart(config: dict[str, Any]) -> dict[str, Any]:
    params = config.get("params") or {}
    for key in ("datasource", "slice_id", "dashboards", "url_params"):
        params.pop(key, None)
    # A saved query context names the dataset and chart by id; the UI rebuilds it on save.
    config["query_context"] = None
    return config


def normalize_dataset(config: dict[str, Any]) -> dict[str, Any]:
    # Superset exports columns and metrics in no stable order: sort them by name.
    config["columns"] = sorted(config.get("columns") or [], key=lambda c: c["column_name"])
    config["metrics"] = sorted(config.get("metrics") or [], key=lambda m: m["metric_name"])
    return config


def normalize_database(config: dict[str, Any], serving_path: str | None) -> dict[str, Any]:
    uri = config.get("sqlalchemy_uri", "")
    if serving_path and uri == f"duckdb:///{serving_path}":
        config["sqlalchemy_uri"] = "duckdb:///${UF_SERVING_PATH}"
    config.pop("password", None)
    return config


def normalize_export(files: dict[str, str], serving_path: str | None) -> dict[str, str]:
    """An ExportAssetsCommand result ({path in zip: yaml}) as the files of the bundle folder."""
    out: dict[str, str] = {}
    database_dirs: dict[str, str] = {}
    parsed = {}
    for name, text in files.items():
        relative = (
            name.split("/", 1)[1]
            if name.startswith(("dashboard_export", "assets_export", BUNDLE_ROOT))
            else name
        )
        parsed[relative] = yaml.safe_load(text)
    for relative, config in parsed.items():
        if relative.startswith("databases/"):
            database_dirs[str(config["uuid"])] = file_stem(config["database_name"])
    for relative, config in sorted(parsed.items()):
        folder = relative.split("/", 1)[0]
        if relative == "metadata.yaml":
            target, config = "metadata.yaml", {"version": config["version"], "type": "assets"}
        elif folder == "databases":
            config = normalize_database(config, serving_path)
            target = f"databases/{file_stem(config['database_name'])}.yaml"
        elif folder == "datasets":
            config = normalize_dataset(config)
            db_dir = database_dirs.get(str(config["database_uuid"]), "unknown_database")
            target = f"datasets/{db_dir}/{file_stem(config['table_name'])}.yaml"
        elif folder == "charts":
            config = normalize_chart(config)
            target = f"charts/{file_stem(config['slice_name'])}.yaml"
        elif folder == "dashboards":
            config = normalize_dashboard(config)
            target = f"dashboards/{file_stem(config['dashboard_title'])}.yaml"
        else:
            continue  # saved queries and themes are not kept as code
        if target in out:
            raise BundleError(
                f"two assets would be written to superset/{target}: give them distinct names"
            )
        out[target] = dump_yaml(config)
    return out


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(config, sort_keys=True, allow_unicode=True, width=100)


def write_bundle(bundle: Path, files: dict[str, str]) -> tuple[int, int]:
    """Replace the asset folders and metadata.yaml by `files` (other files stay).

    Returns (files written, files removed)."""
    existing = set(read_bundle(bundle)) if (bundle / "metadata.yaml").exists() else set()
    written = 0
    for name, text in files.items():
        path = bundle / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written += 1
    removed = 0
    for name in existing - set(files):
        (bundle / name).unlink()
        removed += 1
    for folder in ASSET_DIRS:
        for directory in sorted((bundle / folder).glob("**/"), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
    return written, removed


def read_roles(bundle: Path) -> dict[str, Any]:
    """superset/roles.yml, checked: every role named once, `dashboards` is `all` or a list."""
    path = bundle / ROLES_FILE
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BundleError(f"{path}: cannot read the roles file: {exc}") from exc
    names = [role.get("name") for role in config.get("roles", [])]
    if not names or None in names or len(names) != len(set(names)):
        raise BundleError(f"{path}: every role needs a distinct `name`")
    for role in config["roles"]:
        dashboards = role.get("dashboards", [])
        if dashboards != "all" and not isinstance(dashboards, list):
            raise BundleError(
                f"{path}: role {role['name']}: `dashboards` is `all` or a list of slugs"
            )
    rls = config.get("row_level_security") or {}
    for key in ("group_key", "base_filter", "partner_filter"):
        if key not in rls:
            raise BundleError(f"{path}: row_level_security.{key} is missing")
    shared = rls.setdefault("shared_datasets", [])
    if not isinstance(shared, list) or set(shared) & set(rls["partner_filter"]["datasets"]):
        raise BundleError(
            f"{path}: row_level_security.shared_datasets is a list of datasets without partner "
            "rows, none of them filtered per partner"
        )
    return config


def check_partner_slug(slug: str) -> str:
    if not PARTNER_SLUG_RE.match(slug):
        raise BundleError(
            f"partner slug {slug!r} is invalid: lowercase letters, digits and '-', 2-40 characters"
        )
    return slug


def check_username(name: str) -> str:
    """Analyst user names follow the partner slug rule: no quote, no space, no surprise."""
    if not PARTNER_SLUG_RE.match(name):
        raise BundleError(
            f"user name {name!r} is invalid: lowercase letters, digits and '-', 2-40 characters"
        )
    return name


def base_filter_tables(config: dict[str, Any], tables: list[str]) -> list[str]:
    """The datasets the default-deny Base filter covers: all but the shared ones."""
    shared = set(config["row_level_security"].get("shared_datasets") or [])
    return [table for table in tables if table not in shared]


def partner_rls_name(slug: str) -> str:
    return f"partner {check_partner_slug(slug)}: own rows"


def partner_role_name(config: dict[str, Any], slug: str) -> str:
    return (
        f"{config['row_level_security']['partner_filter']['role_prefix']}{check_partner_slug(slug)}"
    )


def partner_clause(config: dict[str, Any], slug: str) -> str:
    """The Regular RLS clause of one partner; the slug pattern admits no quote."""
    column = config["row_level_security"]["partner_filter"]["column"]
    return f"{column} = '{check_partner_slug(slug)}'"


def dashboard_roles(config: dict[str, Any], slugs: list[str]) -> dict[str, list[str]]:
    """{dashboard slug: names of the roles (besides Admin) that may open it}."""
    out: dict[str, list[str]] = {slug: [] for slug in slugs}
    for role in config["roles"]:
        wanted = role.get("dashboards") or []
        for slug in slugs if wanted == "all" else wanted:
            if slug not in out:
                raise BundleError(
                    f"superset/{ROLES_FILE}: role {role['name']} names dashboard {slug!r}, "
                    "which is not in the bundle"
                )
            out[slug].append(role["name"])
    return out


# ---------------------------------------------------------------- Superset side (I/O)


_APP = None


def _app():
    global _APP
    if _APP is None:
        from superset.app import create_app

        _APP = create_app()
    return _APP


def cmd_sync(bundle: Path) -> int:
    from flask import g
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.commands.importers.v1.utils import get_contents_from_bundle

    from superset import security_manager

    files = template(read_bundle(bundle), dict(os.environ))
    data = to_zip(files)
    state = Path(os.environ.get("UF_SUPERSET_STATE", tempfile.gettempdir()))
    state.mkdir(parents=True, exist_ok=True)
    (state / "bundle.zip").write_bytes(data)
    app = _app()
    with app.app_context():
        g.user = security_manager.find_user(username="admin")
        if g.user is None:
            raise BundleError("Superset has no user 'admin'; run 'supersetctl start' first")
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            contents = get_contents_from_bundle(archive)
        serving = Path(os.environ.get("UF_SERVING_PATH", ""))
        if not serving.is_file():
            # Superset would warn once per dataset that it could not look at the table: say it once
            print(f"superset: {serving} is not published yet; charts fill after the first publish")
            logging.getLogger("superset.commands").setLevel(logging.ERROR)
        ImportAssetsCommand(contents).run()
        summary = sync_roles(read_roles(bundle))
    counts = {folder: sum(1 for n in files if n.startswith(folder + "/")) for folder in ASSET_DIRS}
    print(
        "superset: synced "
        + ", ".join(f"{count} {folder}" for folder, count in counts.items())
        + f" from {bundle} (serving {os.environ.get('UF_SERVING_PATH', '?')}); {summary}"
    )
    return 0


def _state_dir() -> Path:
    return Path(os.environ.get("UF_SUPERSET_STATE", tempfile.gettempdir()))


def _permissions(security_manager: Any, names: list[str]) -> set[Any]:
    perms: set[Any] = set()
    for name in names:
        role = security_manager.find_role(name)
        if role is None:
            raise BundleError(f"Superset has no built-in role {name!r}: run `superset init`")
        perms.update(role.permissions)
    return perms


def _datasets_by_name(names: list[str]) -> list[Any]:
    from superset.connectors.sqla.models import SqlaTable
    from superset.extensions import db

    found = {
        t.table_name: t for t in db.session.query(SqlaTable).filter(SqlaTable.table_name.in_(names))
    }
    missing = sorted(set(names) - set(found))
    if missing:
        raise BundleError(
            f"superset/{ROLES_FILE} names datasets not in Superset: {missing}; "
            "import the bundle first (`urbanflow superset sync`)"
        )
    return [found[name] for name in names]


def _access(security_manager: Any, permission: str, view: str) -> Any:
    pv = security_manager.find_permission_view_menu(permission, view)
    return pv or security_manager.add_permission_view_menu(permission, view)


def _rls_filter(name: str) -> Any:
    from superset.connectors.sqla.models import RowLevelSecurityFilter
    from superset.extensions import db

    rls = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
    if rls is None:
        rls = RowLevelSecurityFilter(name=name)
        db.session.add(rls)
    return rls


def sync_roles(config: dict[str, Any]) -> str:
    """Roles, dashboard roles and the Base RLS filter exactly as roles.yml says (idempotent)."""
    from superset.connectors.sqla.models import SqlaTable
    from superset.extensions import db
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.utils.core import RowLevelSecurityFilterType

    from superset import security_manager

    for spec in config["roles"]:
        if spec.get("builtin"):
            if security_manager.find_role(spec["name"]) is None:
                raise BundleError(f"Superset has no built-in role {spec['name']!r}")
            continue
        role = security_manager.find_role(spec["name"]) or security_manager.add_role(spec["name"])
        perms = _permissions(security_manager, spec.get("copy_from") or [])
        for name in spec.get("databases") or []:
            database = db.session.query(Database).filter_by(database_name=name).one_or_none()
            if database is None:
                raise BundleError(f"superset/{ROLES_FILE}: no database {name!r} in Superset")
            perms.add(_access(security_manager, "database_access", database.perm))
        for dataset in _datasets_by_name(spec.get("datasets") or []):
            perms.add(_access(security_manager, "datasource_access", dataset.perm))
        if set(role.permissions) != perms:
            role.permissions = sorted(perms, key=lambda pv: pv.id or 0)
    dashboards = {d.slug: d for d in db.session.query(Dashboard) if d.slug}
    for slug, names in dashboard_roles(config, sorted(dashboards)).items():
        roles = [security_manager.find_role(name) for name in names]
        if {r.id for r in dashboards[slug].roles} != {r.id for r in roles}:
            dashboards[slug].roles = roles
    rls = config["row_level_security"]
    base = rls["base_filter"]
    exempt = [security_manager.find_role(name) for name in base["exempt_roles"]]
    base_filter = _rls_filter(base["name"])
    base_filter.filter_type = RowLevelSecurityFilterType.BASE.value
    base_filter.description = (
        "Default deny: a role not exempt sees no row unless a filter of its group allows it."
    )
    base_filter.group_key = rls["group_key"]
    base_filter.clause = base["clause"]
    base_filter.roles = exempt
    every_table = db.session.query(SqlaTable).order_by(SqlaTable.id).all()
    covered = set(base_filter_tables(config, [t.table_name for t in every_table]))
    base_filter.tables = [t for t in every_table if t.table_name in covered]
    db.session.commit()
    partners = sum(
        1
        for r in security_manager.get_all_roles()
        if r.name.startswith(rls["partner_filter"]["role_prefix"])
    )
    return f"roles {', '.join(r['name'] for r in config['roles'])} ({partners} partner roles)"


def ensure_partner_user(
    slug: str, password: str | None = None, bundle: Path = DEFAULT_BUNDLE
) -> Path:
    """The Superset user of one partner (username = slug), its own role and Regular RLS filter.

    Idempotent: a second call changes nothing except the password when one is given. Without one,
    the password is generated once into $UF_SUPERSET_STATE/partners/<slug>.password (mode 600).
    Returns the password file."""
    from superset.extensions import db
    from superset.utils.core import RowLevelSecurityFilterType

    from superset import security_manager

    config = read_roles(bundle)
    check_partner_slug(slug)
    secret_file, password = _password_file("partners", slug, password)
    sync_roles(config)
    base_role = security_manager.find_role("Partner")
    own_role_name = partner_role_name(config, slug)
    own_role = security_manager.find_role(own_role_name) or security_manager.add_role(own_role_name)
    partner = config["row_level_security"]["partner_filter"]
    rls = _rls_filter(partner_rls_name(slug))
    rls.filter_type = RowLevelSecurityFilterType.REGULAR.value
    rls.description = f"Partner {slug} sees only rows with {partner['column']} = '{slug}'."
    rls.group_key = config["row_level_security"]["group_key"]
    rls.clause = partner_clause(config, slug)
    rls.roles = [own_role]
    rls.tables = _datasets_by_name(partner["datasets"])
    user = security_manager.find_user(username=slug)
    if user is None:
        user = security_manager.add_user(
            slug,
            slug,
            "(partner)",
            f"{slug}@partners.urbanflow.invalid",
            [base_role, own_role],
            password=password,
        )
        if not user:
            raise BundleError(f"Superset refused to create the user of partner {slug}")
    else:
        _refresh_user(security_manager, user, [base_role, own_role], password)
    db.session.commit()
    return secret_file


def _password_file(folder_name: str, name: str, password: str | None) -> tuple[Path, str]:
    """$UF_SUPERSET_STATE/<folder>/<name>.password (mode 600): the given password, else the one
    kept there, else a new one."""
    folder = _state_dir() / folder_name
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret_file = folder / f"{name}.password"
    if password is None:
        if secret_file.exists() and secret_file.read_text().strip():
            password = secret_file.read_text().strip()
        else:
            password = secrets.token_urlsafe(18)
    old_umask = os.umask(0o077)
    try:
        secret_file.write_text(password + "\n")
    finally:
        os.umask(old_umask)
    return secret_file, password


def _refresh_user(security_manager: Any, user: Any, roles: list[Any], password: str) -> None:
    from werkzeug.security import check_password_hash

    user.roles = roles
    user.active = True
    if not check_password_hash(user.password, password):
        security_manager.reset_password(user.id, password)


def disable_partner_user(slug: str, bundle: Path = DEFAULT_BUNDLE) -> str:
    """Revoke a partner in Superset: its user deactivated and stripped of roles, its RLS filter
    and password file deleted. Idempotent; `ensure_partner_user` restores everything."""
    from superset.connectors.sqla.models import RowLevelSecurityFilter
    from superset.extensions import db

    from superset import security_manager

    read_roles(bundle)
    check_partner_slug(slug)
    user = security_manager.find_user(username=slug)
    rls = (
        db.session.query(RowLevelSecurityFilter)
        .filter_by(name=partner_rls_name(slug))
        .one_or_none()
    )
    if rls is not None:
        db.session.delete(rls)
    if user is not None:
        user.active = False
        user.roles = []
    db.session.commit()
    (_state_dir() / "partners" / f"{slug}.password").unlink(missing_ok=True)
    if user is None:
        return f"superset: no user {slug}; nothing to disable"
    return f"superset: partner user {slug} disabled (no role, no RLS filter, cannot sign in)"


def ensure_analyst_user(name: str, password: str | None = None) -> Path:
    """An analyst's user (role Analyst), password generated once into users/<name>.password."""
    from superset.extensions import db

    from superset import security_manager

    check_username(name)
    role = security_manager.find_role("Analyst")
    if role is None:
        raise BundleError("Superset has no role Analyst: run `supersetctl sync` first")
    secret_file, password = _password_file("users", name, password)
    user = security_manager.find_user(username=name)
    if user is None:
        made = security_manager.add_user(
            name, name, "(analyst)", f"{name}@urbanflow.invalid", [role], password=password
        )
        if not made:
            raise BundleError(f"Superset refused to create the user {name}")
    else:
        _refresh_user(security_manager, user, [role], password)
    db.session.commit()
    return secret_file


def cmd_partner_user(bundle: Path, slug: str) -> int:
    from flask import g

    from superset import security_manager

    app = _app()
    with app.app_context():
        g.user = security_manager.find_user(username="admin")
        secret_file = ensure_partner_user(
            slug, os.environ.get("UF_SUPERSET_PARTNER_PASSWORD"), bundle
        )
    print(
        f"superset: partner user {slug} (role Partner + Partner {slug}; password in {secret_file})"
    )
    return 0


def cmd_partner_disable(bundle: Path, slug: str) -> int:
    from flask import g

    from superset import security_manager

    app = _app()
    with app.app_context():
        g.user = security_manager.find_user(username="admin")
        print(disable_partner_user(slug, bundle))
    return 0


def cmd_analyst_user(name: str) -> int:
    from flask import g

    from superset import security_manager

    app = _app()
    with app.app_context():
        g.user = security_manager.find_user(username="admin")
        secret_file = ensure_analyst_user(name)
    print(f"superset: analyst user {name} (role Analyst; password in {secret_file})")
    return 0


def cmd_roles(bundle: Path) -> int:
    from flask import g

    from superset import security_manager

    app = _app()
    with app.app_context():
        g.user = security_manager.find_user(username="admin")
        print(f"superset: {sync_roles(read_roles(bundle))}")
    return 0


def cmd_export(bundle: Path) -> int:
    from flask import g
    from superset.commands.export.assets import ExportAssetsCommand

    from superset import security_manager

    app = _app()
    with app.app_context():
        g.user = security_manager.find_user(username="admin")
        exported = {name: content() for name, content in ExportAssetsCommand().run()}
    files = normalize_export(exported, os.environ.get("UF_SERVING_PATH"))
    written, removed = write_bundle(bundle, files)
    print(
        f"superset: exported {len(files) - 1} assets to {bundle} "
        f"({written} files changed, {removed} removed)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="supersetctl", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command",
        choices=("sync", "export", "roles", "partner-user", "partner-disable", "analyst-user"),
    )
    parser.add_argument(
        "slug", nargs="?", help="partner slug (partner-user, partner-disable) or user name"
    )
    parser.add_argument(
        "--bundle", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default superset/)"
    )
    args = parser.parse_args(argv)
    # Superset's importer trips SQLAlchemy warnings about its own flush events: not ours to act on.
    warnings.filterwarnings("ignore", message=".*flush process.*")
    warnings.filterwarnings("ignore", message=".*inner-flush event handlers.*")
    _app()  # before any other superset import: the models need an initialized app
    from superset.commands.exceptions import CommandInvalidError

    try:
        if args.command in ("partner-user", "partner-disable", "analyst-user"):
            if not args.slug:
                raise BundleError(f"usage: supersetctl {args.command} <name>")
            if args.command == "partner-disable":
                return cmd_partner_disable(args.bundle, args.slug)
            if args.command == "analyst-user":
                return cmd_analyst_user(args.slug)
            return cmd_partner_user(args.bundle, args.slug)
        if args.command == "roles":
            return cmd_roles(args.bundle)
        return cmd_sync(args.bundle) if args.command == "sync" else cmd_export(args.bundle)
    except BundleError as exc:
        print(f"supersetctl: {exc}", file=sys.stderr)
        return 1
    except CommandInvalidError as exc:
        print(
            f"supersetctl: the bundle in {args.bundle} is invalid: {exc.normalized_messages()}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
