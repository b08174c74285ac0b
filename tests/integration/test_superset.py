"""Superset over the published serving.duckdb: provisioned from superset/, read-only, never stale.

A real Superset (infra/superset/supersetctl, .venv-superset) on a free port with its own metadata
under a tmp var dir serves a serving.duckdb made by the real pipeline (`urbanflow demo` on the test
broker; or a copy of `UF_TEST_SERVING_PATH` when set, to iterate faster; `UF_TEST_SUPERSET_PORT`
pins the port). The bundle is synced
through `supersetctl sync` (assets, roles, row-level security), two partners are registered with
`urbanflow partners add` (API key and Superset user in one command) and an analyst is made with
`supersetctl analyst-user`; everything is then checked through the REST API as a client would.
tests/integration/test_superset_browser.py reuses the same running Superset (`shared_superset`).
Waits are for a condition with a generous deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
import secrets_registry
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SUPERSETCTL = REPO / "infra" / "superset" / "supersetctl"
VENV = Path(os.environ.get("UF_SUPERSET_VENV", REPO / ".venv-superset"))
URBANFLOW = REPO / ".venv" / "bin" / "urbanflow"
BUNDLE = REPO / "superset"
PEOPLE_REACHED_CHART = "People reached (target 28 million)"
PEOPLE_REACHED_SQL = (
    "select max(achieved_to_date) from marts.fct_strategic_progress"
    " where target_code = 'people_reached' and theme_code = 'all'"
)
DEADLINE_S = 120
#: Partners of the sample world the fixture registers (`urbanflow partners add`).
PARTNERS = ("habitat-asia", "urban-futures")
#: The analyst user the fixture makes (`supersetctl analyst-user`).
ANALYST = "analyst"
#: Dashboards a partner may open; every other one is for analysts.
PARTNER_DASHBOARDS = ("my-feeds", "strategic-plan")

if not (VENV / "bin" / "gunicorn").exists():
    pytest.skip(
        f"{VENV} is missing: run `infra/superset/supersetctl install` to test Superset",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bundle(folder: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((BUNDLE / folder).rglob("*.yaml"))]


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll until `condition()` is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: not true within {timeout} s (last value: {last!r})")


def _scalar(path: Path, sql: str) -> Any:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


@pytest.fixture(scope="session")
def serving_path(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A copy of the serving.duckdb the real pipeline published (the session's sample-world demo,
    or UF_TEST_SERVING_PATH), in a folder of its own: a test here publishes over it."""
    if _SHARED.get("serving_path"):
        return _SHARED["serving_path"]
    prebuilt = os.environ.get("UF_TEST_SERVING_PATH")
    source = Path(prebuilt) if prebuilt else request.getfixturevalue("sample_world_demo").serving
    target = tmp_path_factory.mktemp("pipeline") / "serving.duckdb"
    shutil.copyfile(source, target)
    _SHARED["serving_path"] = target
    return target


#: One pipeline run and one Superset per test session, whichever module asks first (the browser
#: tests import these fixtures; pytest would otherwise build a second copy for that module).
_SHARED: dict[str, Any] = {}


class Superset:
    """A running Superset and a logged-in REST client (JWT + CSRF, as the UI's API calls)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{env['UF_SUPERSET_PORT']}"
        self.http = requests.Session()

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SUPERSETCTL), *args], env=self.env, capture_output=True, text=True, timeout=900
        )

    def partner_password_file(self, slug: str) -> Path:
        return Path(self.env["UF_VAR_DIR"]) / "superset" / "partners" / f"{slug}.password"

    def analyst_password_file(self) -> Path:
        return Path(self.env["UF_VAR_DIR"]) / "superset" / "users" / f"{ANALYST}.password"

    def urbanflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        """An urbanflow command on this Superset's var dir (its partners database too)."""
        return subprocess.run(
            [str(URBANFLOW), *args],
            env={**self.env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=900,
        )

    def as_user(self, username: str, password: str) -> Superset:
        """Another client of the same server, signed in as `username`."""
        client = Superset(self.env)
        client.login(username, password)
        return client

    def login(self, username: str = "admin", password: str | None = None) -> None:
        self.http = requests.Session()
        answer = self.http.post(
            f"{self.url}/api/v1/security/login",
            json={
                "username": username,
                "password": password or self.env["UF_SUPERSET_ADMIN_PASSWORD"],
                "provider": "db",
                "refresh": False,
            },
            timeout=30,
        )
        answer.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        csrf = self.get("/api/v1/security/csrf_token/")["result"]
        self.http.headers.update({"X-CSRFToken": csrf, "Referer": self.url})

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        params = {"q": json.dumps(query)} if query else None
        answer = self.http.get(f"{self.url}{path}", params=params, timeout=60)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text[:500]}"
        return answer.json()

    def listing(self, kind: str, columns: list[str]) -> list[dict[str, Any]]:
        return self.get(f"/api/v1/{kind}/", page_size=100, columns=columns)["result"]

    def chart_data(self, chart: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self.http.post(
            f"{self.url}/api/v1/chart/data", json=query_context(chart), timeout=120
        )
        assert answer.status_code == 200, (
            f"chart {chart['slice_name']!r}: {answer.status_code} {answer.text[:800]}"
        )
        return answer.json()["result"][0]["data"]


def query_context(chart: dict[str, Any]) -> dict[str, Any]:
    """The chart data query the UI builds from a chart's saved form data (imported charts have
    no saved query context): its metrics, columns and filters."""
    params = json.loads(chart["params"])
    metrics = list(params.get("metrics") or [])
    if params.get("metric"):
        metrics.append(params["metric"])
    if params.get("secondary_metric"):
        metrics.append(params["secondary_metric"])
    columns = [params[k] for k in ("x_axis", "entity") if params.get(k)]
    if params.get("query_mode") == "raw":
        columns += params["all_columns"]
        metrics = []
    else:
        columns += params.get("groupby") or []
    filters, where = [], []
    for adhoc in params.get("adhoc_filters") or []:
        if adhoc["expressionType"] == "SIMPLE":
            filters.append(
                {"col": adhoc["subject"], "op": adhoc["operator"], "val": adhoc["comparator"]}
            )
        else:
            where.append(f"({adhoc['sqlExpression']})")
    return {
        "datasource": {"id": chart["datasource_id"], "type": "table"},
        "force": True,
        "queries": [
            {
                "columns": columns,
                "metrics": metrics,
                "filters": filters,
                "extras": {"where": " and ".join(where)},
                "row_limit": params.get("row_limit") or 1000,
            }
        ],
        "form_data": {**params, "slice_id": chart["id"]},
        "result_format": "json",
        "result_type": "full",
    }


@pytest.fixture(scope="session")
def superset(tmp_path_factory: pytest.TempPathFactory, serving_path: Path) -> Iterator[Superset]:
    """The shared Superset: started by the first module that asks, stopped after the last."""
    if "superset" not in _SHARED:
        _SHARED["superset"] = _start_superset(tmp_path_factory, serving_path)
        _SHARED["users"] = 0
    _SHARED["users"] += 1
    server = _SHARED["superset"]
    try:
        yield server
    finally:
        _SHARED["users"] -= 1
        if _SHARED["users"] == 0:
            del _SHARED["superset"]
            stopped = server.ctl("stop")
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def _start_superset(tmp_path_factory: pytest.TempPathFactory, serving_path: Path) -> Superset:
    var = tmp_path_factory.mktemp("superset-var")
    env = {
        **os.environ,
        "UF_VAR_DIR": str(var),
        "UF_SUPERSET_PORT": os.environ.get("UF_TEST_SUPERSET_PORT") or str(_free_port()),
        "UF_SERVING_PATH": str(serving_path),
        "UF_SUPERSET_ADMIN_PASSWORD": uuid.uuid4().hex,
        "UF_SUPERSET_START_TIMEOUT": "600",
    }
    env.pop("UF_SUPERSET_SECRET_KEY", None)
    secrets_registry.register(env["UF_SUPERSET_ADMIN_PASSWORD"], "Superset admin password")
    server = Superset(env)
    started = server.ctl("start")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        synced = server.ctl("sync")
        assert synced.returncode == 0, synced.stdout[-3000:] + synced.stderr[-3000:]
        for slug in PARTNERS:
            made = server.urbanflow("partners", "add", slug)
            assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
            assert f"partner {slug}: Superset partner user {slug}" in made.stderr, made.stderr
            secrets_registry.register(made.stdout, "partner API key")
        analyst = server.ctl("analyst-user", ANALYST)
        assert analyst.returncode == 0, analyst.stdout[-3000:] + analyst.stderr[-3000:]
        secrets_registry.register_files(
            var / "superset", "secret_key", "*/*.password", kind="Superset secret"
        )
        server.login()
    except BaseException:
        server.ctl("stop")
        raise
    return server


def _chart(superset: Superset, name: str) -> dict[str, Any]:
    charts = superset.listing("chart", ["id", "slice_name", "params", "datasource_id"])
    (chart,) = [c for c in charts if c["slice_name"] == name]
    return chart


def test_start_prints_url_and_password_source_and_a_second_start_is_harmless(
    superset: Superset,
) -> None:
    again = superset.ctl("start")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert f"running at {superset.url} (user admin" in again.stdout
    assert superset.ctl("status").returncode == 0
    # A secret key was generated once, kept private; the password came from the environment.
    secret = Path(superset.env["UF_VAR_DIR"]) / "superset" / "secret_key"
    assert secret.stat().st_mode & 0o077 == 0 and secret.read_text().strip()


def test_sync_provisions_every_dashboard_chart_and_dataset_of_the_bundle(
    superset: Superset,
) -> None:
    dashboards = superset.listing("dashboard", ["dashboard_title", "uuid"])
    charts = superset.listing("chart", ["slice_name", "uuid"])
    datasets = superset.listing("dataset", ["table_name", "schema", "uuid"])

    assert {(d["dashboard_title"], d["uuid"]) for d in dashboards} == {
        (d["dashboard_title"], d["uuid"]) for d in _bundle("dashboards")
    }
    assert {"Strategic Plan 2022-2025", "Pipeline health"} <= {
        d["dashboard_title"] for d in dashboards
    }
    assert {(c["slice_name"], c["uuid"]) for c in charts} == {
        (c["slice_name"], c["uuid"]) for c in _bundle("charts")
    }
    assert {(d["schema"], d["table_name"]) for d in datasets} == {
        ("marts", d["table_name"]) for d in _bundle("datasets")
    }


def test_serving_database_is_read_only_and_templated_to_the_serving_path(
    superset: Superset, serving_path: Path
) -> None:
    (database,) = superset.listing("database", ["id", "database_name", "backend"])
    detail = superset.get(f"/api/v1/database/{database['id']}/connection")["result"]
    assert detail["sqlalchemy_uri"] == f"duckdb:///{serving_path}"
    extra = json.loads(detail["extra"])
    assert extra["engine_params"]["connect_args"]["read_only"] is True
    assert detail["allow_dml"] is False


def test_second_sync_changes_nothing(superset: Superset) -> None:
    def snapshot() -> tuple[Any, ...]:
        return (
            sorted((d["id"], d["uuid"]) for d in superset.listing("dashboard", ["id", "uuid"])),
            sorted((c["id"], c["uuid"]) for c in superset.listing("chart", ["id", "uuid"])),
            sorted((d["id"], d["uuid"]) for d in superset.listing("dataset", ["id", "uuid"])),
        )

    before = snapshot()
    again = superset.ctl("sync")
    assert again.returncode == 0, again.stderr[-3000:]
    assert snapshot() == before


def test_export_after_sync_gives_back_the_bundle_unchanged(
    superset: Superset, tmp_path: Path
) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    exported = superset.ctl("export", "--bundle", str(copy))
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "(0 files changed, 0 removed)" in exported.stdout
    for path in sorted(BUNDLE.rglob("*.yaml")):
        assert (copy / path.relative_to(BUNDLE)).read_text() == path.read_text(), path


def test_every_chart_returns_rows_through_the_chart_data_api(superset: Superset) -> None:
    charts = superset.listing("chart", ["id", "slice_name", "params", "datasource_id"])
    # The demo runs the gate once: its own run is recorded by the next build, not this one; and
    # its sample world sends nothing the sink refuses.
    may_be_empty = {"Quality-gate runs", "Dead letters by reason", "Why my events were refused"}
    empty = [c["slice_name"] for c in charts if not superset.chart_data(c)]
    assert set(empty) <= may_be_empty


def test_plan_figures_match_the_serving_database(superset: Superset, serving_path: Path) -> None:
    (row,) = superset.chart_data(_chart(superset, PEOPLE_REACHED_CHART))
    assert row["People reached to date"] == _scalar(serving_path, PEOPLE_REACHED_SQL)

    (cities,) = superset.chart_data(
        _chart(superset, "Cities with women's-empowerment results (target 24)")
    )
    assert cities["Cities to date"] == _scalar(
        serving_path,
        "select max(achieved_to_date) from marts.fct_strategic_progress"
        " where target_code = 'cities_women_empowerment' and theme_code = 'all'",
    )
    loaded = superset.chart_data(_chart(superset, "Rows loaded"))
    assert loaded[0]["Rows loaded"] == _scalar(
        serving_path, "select sum(row_count) from marts.fct_source_health"
    )


def test_a_publish_while_superset_runs_changes_what_a_chart_returns(
    superset: Superset, serving_path: Path
) -> None:
    chart = _chart(superset, PEOPLE_REACHED_CHART)
    before = _scalar(serving_path, PEOPLE_REACHED_SQL)
    assert superset.chart_data(chart)[0]["People reached to date"] == before  # opens the file

    # Publish as the gate does: build a new file beside the served one, then os.replace it.
    candidate = serving_path.with_name("serving.candidate.duckdb")
    shutil.copyfile(serving_path, candidate)
    with duckdb.connect(str(candidate)) as con:
        con.execute(
            "update marts.fct_strategic_progress set achieved_to_date = achieved_to_date + 1234567"
            " where target_code = 'people_reached' and theme_code = 'all'"
        )
    os.replace(candidate, serving_path)
    after = _scalar(serving_path, PEOPLE_REACHED_SQL)
    assert after == before + 1234567

    figure = _wait_for(
        lambda: superset.chart_data(chart)[0]["People reached to date"] == after,
        "the chart shows the newly published figure",
    )
    assert figure


def _partner(superset: Superset, slug: str) -> Superset:
    return superset.as_user(slug, superset.partner_password_file(slug).read_text().strip())


def _rows(client: Superset, table: str, columns: list[str], datasets: dict[str, int]) -> Any:
    body = {
        "datasource": {"id": datasets[table], "type": "table"},
        "force": True,
        "queries": [{"columns": columns, "metrics": [], "row_limit": 10000}],
        "result_format": "json",
        "result_type": "full",
    }
    return client.http.post(f"{client.url}/api/v1/chart/data", json=body, timeout=120)


def _dataset_ids(superset: Superset) -> dict[str, int]:
    return {d["table_name"]: d["id"] for d in superset.listing("dataset", ["id", "table_name"])}


def test_partner_user_gets_a_private_password_file_and_a_second_run_changes_nothing(
    superset: Superset,
) -> None:
    secret = superset.partner_password_file(PARTNERS[0])
    assert secret.stat().st_mode & 0o077 == 0
    before = secret.read_text()
    again = superset.ctl("partner-user", PARTNERS[0])
    assert again.returncode == 0, again.stderr[-2000:]
    assert secret.read_text() == before
    _partner(superset, PARTNERS[0])  # still signs in with it
    bad = superset.ctl("partner-user", "Not A Slug")
    assert bad.returncode == 1 and "partner slug 'Not A Slug' is invalid" in bad.stderr


def test_roles_of_roles_yml_exist_and_dashboards_carry_them(superset: Superset) -> None:
    roles = {r["name"] for r in superset.get("/api/v1/security/roles/", page_size=100)["result"]}
    assert {"Admin", "Analyst", "Partner"} | {f"Partner {slug}" for slug in PARTNERS} <= roles
    dashboards = superset.listing("dashboard", ["slug", "roles.name"])
    by_slug = {d["slug"]: {r["name"] for r in d["roles"]} for d in dashboards}
    for slug in PARTNER_DASHBOARDS:
        assert by_slug.pop(slug) == {"Analyst", "Partner"}
    assert all(names == {"Analyst"} for names in by_slug.values()), by_slug


def test_a_partner_sees_my_feeds_with_only_its_own_rows_and_the_whole_plan(
    superset: Superset, serving_path: Path
) -> None:
    datasets = _dataset_ids(superset)
    everyone = {
        row[0]
        for row in duckdb.connect(str(serving_path), read_only=True)
        .execute("select distinct partner_slug from marts.fct_partner_feeds")
        .fetchall()
    }
    assert set(PARTNERS) <= everyone
    plan_rows = _scalar(serving_path, "select count(*) from marts.fct_strategic_progress")
    for slug in PARTNERS:
        partner = _partner(superset, slug)
        listed = sorted(d["slug"] for d in partner.listing("dashboard", ["slug"]))
        assert listed == sorted(PARTNER_DASHBOARDS)
        answer = _rows(partner, "fct_partner_feeds", ["partner_slug", "source_urn"], datasets)
        assert answer.status_code == 200, answer.text[:500]
        seen = {row["partner_slug"] for row in answer.json()["result"][0]["data"]}
        assert seen == {slug}, f"{slug} sees {seen}"
        dead = _rows(partner, "fct_dead_letters", ["partner_slug"], datasets)
        assert dead.status_code == 200
        assert {r["partner_slug"] for r in dead.json()["result"][0]["data"]} <= {slug}
        # The plan is programme-wide (no partner column, no partner's rows): the same for all.
        plan = _rows(partner, "fct_strategic_progress", ["strategic_progress_key"], datasets)
        assert plan.status_code == 200, plan.text[:500]
        assert len(plan.json()["result"][0]["data"]) == plan_rows
        # Data behind the analyst dashboards is refused outright.
        assert _rows(partner, "fct_source_health", ["raw_table"], datasets).status_code in (
            401,
            403,
        )
        health = partner.http.get(f"{superset.url}/api/v1/dashboard/pipeline-health", timeout=30)
        assert health.status_code in (403, 404)
    admin_rows = _rows(superset, "fct_partner_feeds", ["partner_slug"], datasets)
    assert {r["partner_slug"] for r in admin_rows.json()["result"][0]["data"]} == everyone


def test_an_analyst_lists_every_dashboard_and_sees_every_partners_rows(
    superset: Superset, serving_path: Path
) -> None:
    analyst = superset.as_user(ANALYST, superset.analyst_password_file().read_text().strip())
    listed = {d["slug"] for d in analyst.listing("dashboard", ["slug"])}
    assert listed == {d["slug"] for d in _bundle("dashboards")}
    datasets = _dataset_ids(superset)
    answer = _rows(analyst, "fct_partner_feeds", ["partner_slug"], datasets)
    assert answer.status_code == 200, answer.text[:500]
    seen = {r["partner_slug"] for r in answer.json()["result"][0]["data"]}
    assert seen == {
        row[0]
        for row in duckdb.connect(str(serving_path), read_only=True)
        .execute("select distinct partner_slug from marts.fct_partner_feeds")
        .fetchall()
    }


def test_partners_revoke_disables_the_superset_user_and_add_brings_it_back(
    superset: Superset,
) -> None:
    slug = f"p-{uuid.uuid4().hex[:6]}"
    added = superset.urbanflow("partners", "add", slug)
    assert added.returncode == 0, added.stderr[-2000:]
    password = superset.partner_password_file(slug).read_text().strip()
    secrets_registry.register(added.stdout, "partner API key")
    secrets_registry.register(password, "Superset partner password")
    superset.as_user(slug, password)  # signs in

    revoked = superset.urbanflow("partners", "revoke", slug)
    assert revoked.returncode == 0, revoked.stderr[-2000:]
    assert f"partner {slug}: Superset partner user {slug} disabled" in revoked.stderr
    refused = requests.post(
        f"{superset.url}/api/v1/security/login",
        json={"username": slug, "password": password, "provider": "db", "refresh": False},
        timeout=30,
    )
    assert refused.status_code == 401
    assert not superset.partner_password_file(slug).exists()
    filters = superset.get("/api/v1/rowlevelsecurity/", page_size=100)["result"]
    assert f"partner {slug}: own rows" not in {f["name"] for f in filters}

    again = superset.urbanflow("partners", "add", slug)  # a revoked partner may be re-keyed
    assert again.returncode == 0, again.stderr[-2000:]
    secrets_registry.register(again.stdout, "partner API key")
    secrets_registry.register(
        superset.partner_password_file(slug).read_text(), "Superset partner password"
    )
    superset.as_user(slug, superset.partner_password_file(slug).read_text().strip())
    filters = superset.get("/api/v1/rowlevelsecurity/", page_size=100)["result"]
    assert f"partner {slug}: own rows" in {f["name"] for f in filters}
