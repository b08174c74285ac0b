"""Superset in a real browser: headless Debian Chromium driven by Playwright (.venv-superset).

Shares the running Superset of tests/integration/test_superset.py (one pipeline run, one server
per session). infra/superset/browser.py signs in, opens each dashboard, waits until every chart
holder shows a drawn chart, an empty state or an error (generous deadline, no fixed sleep), and
reports each one as JSON; screenshots go under the test's var dir (`screenshots/`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("UF_SUPERSET_VENV", REPO / ".venv-superset"))
CHROMIUM = Path(os.environ.get("UF_CHROMIUM", "/usr/bin/chromium"))
BROWSER = REPO / "infra" / "superset" / "browser.py"

if not (VENV / "bin" / "gunicorn").exists():
    pytest.skip(
        f"{VENV} is missing: run `infra/superset/supersetctl install` to test Superset",
        allow_module_level=True,
    )
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests",
        allow_module_level=True,
    )
if subprocess.run([str(VENV / "bin" / "python"), "-c", "import playwright"]).returncode != 0:
    pytest.skip(
        f"playwright is not installed in {VENV}: run `infra/superset/supersetctl install`",
        allow_module_level=True,
    )

# The running Superset and the pipeline's serving file, shared with the API tests.
from test_superset import (  # noqa: E402
    PARTNERS,
    Superset,
    serving_path,  # noqa: F401  (fixture)
    superset,  # noqa: F401  (fixture)
)

DASHBOARD_SLUGS = sorted(
    yaml.safe_load(p.read_text(encoding="utf-8"))["slug"]
    for p in (REPO / "superset" / "dashboards").glob("*.yaml")
)


def open_dashboards(
    server: Superset, slugs: list[str], user: str | None, password_file: Path | None
) -> dict[str, dict[str, Any]]:
    shots = Path(server.env["UF_VAR_DIR"]) / "screenshots" / (user or "anonymous")
    command = [str(VENV / "bin" / "python"), str(BROWSER), "--url", server.url]
    if user is None:
        command.append("--anonymous")
    else:
        command += ["--user", user, "--password-file", str(password_file)]
    command += ["--screenshots", str(shots), "--timeout", "240", *slugs]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {report["dashboard"]: report for report in reports}


def _admin_password_file(server: Superset, tmp_path: Path) -> Path:
    path = tmp_path / "admin_password"
    path.write_text(server.env["UF_SUPERSET_ADMIN_PASSWORD"])
    path.chmod(0o600)
    return path


def test_admin_sees_every_dashboard_draw_every_chart_without_an_error(
    superset: Superset,  # noqa: F811
    tmp_path: Path,
) -> None:
    reports = open_dashboards(
        superset, DASHBOARD_SLUGS, "admin", _admin_password_file(superset, tmp_path)
    )
    assert set(reports) == set(DASHBOARD_SLUGS)
    for report in reports.values():
        assert report["status"] == "ok", report
        assert report["charts"] > 0, report
        assert report["errors"] == [], report
        assert report["rendered"] + report["empty"] == report["charts"], report
        assert Path(report["screenshot"]).stat().st_size > 10_000
    plan = reports["strategic-plan"]
    assert plan["rendered"] == plan["charts"], "every plan chart has data in the demo world"


def test_a_partner_sees_my_feeds_with_its_own_rows_and_not_the_plan(
    superset: Superset,  # noqa: F811
) -> None:
    slug = PARTNERS[0]
    reports = open_dashboards(
        superset, ["my-feeds", "strategic-plan"], slug, superset.partner_password_file(slug)
    )
    feeds = reports["my-feeds"]
    assert feeds["status"] == "ok" and feeds["errors"] == [], feeds
    assert feeds["rendered"] + feeds["empty"] == feeds["charts"] > 0, feeds
    assert reports["strategic-plan"]["status"] != "ok", reports["strategic-plan"]
    assert reports["strategic-plan"]["charts"] == 0

    # What the charts of My feeds return for this user: its own rows, never another partner's.
    partner = superset.as_user(slug, superset.partner_password_file(slug).read_text().strip())
    listed = {d["slug"] for d in partner.listing("dashboard", ["slug"])}
    assert listed == {"my-feeds"}
    charts = partner.listing("chart", ["id", "slice_name", "params", "datasource_id"])
    status = next(c for c in charts if c["slice_name"] == "My feed status")
    rows = partner.chart_data(status)
    assert rows, "the partner's own feeds are listed"
    others = {s for s in PARTNERS if s != slug}
    sources = {row["source_urn"] for row in rows}
    assert not any(f"urn:partner:{other}" in sources for other in others), sources
    admin_sources = {row["source_urn"] for row in superset.chart_data(status)}
    assert sources < admin_sources


def test_anonymous_gets_the_login_page(superset: Superset) -> None:  # noqa: F811
    reports = open_dashboards(superset, ["strategic-plan", "my-feeds"], None, None)
    assert {r["status"] for r in reports.values()} == {"login"}
