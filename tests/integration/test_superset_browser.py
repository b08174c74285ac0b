"""Superset in a real browser: headless Debian Chromium driven by Playwright (.venv-superset).

Shares the running Superset of tests/integration/test_superset.py (one pipeline run, one server
per session). infra/superset/browser.py signs in, opens each dashboard, waits until every chart
holder shows a drawn chart, an empty state or an error (generous deadline, no fixed sleep), and
reports each one as JSON; screenshots go under the test's var dir (`screenshots/<user>/`).
An analyst (not admin) opens every dashboard; a partner opens My feeds and the Strategic Plan and
is refused every other; anonymous gets the login page.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

#: Each test opens up to nine dashboards in one browser: more than pytest's default 600 s on a
#: loaded 2-core machine (browser.py waits per condition; the subprocess has its own deadline).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2400)]

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
    ANALYST,
    PARTNER_DASHBOARDS,
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


def test_an_analyst_sees_every_dashboard_draw_every_chart_without_an_error(
    superset: Superset,  # noqa: F811
) -> None:
    reports = open_dashboards(superset, DASHBOARD_SLUGS, ANALYST, superset.analyst_password_file())
    assert set(reports) == set(DASHBOARD_SLUGS)
    for report in reports.values():
        assert report["status"] == "ok", report
        assert report["charts"] > 0, report
        assert report["errors"] == [], report
        assert report["rendered"] + report["empty"] == report["charts"], report
        assert Path(report["screenshot"]).stat().st_size > 10_000
    plan = reports["strategic-plan"]
    assert plan["rendered"] == plan["charts"], "every plan chart has data in the demo world"
    health = reports["pipeline-health"]
    assert health["rendered"] >= health["charts"] - 2, health  # dead letters and gate runs may wait


def test_a_partner_sees_my_feeds_and_the_plan_with_its_own_rows_and_no_analyst_dashboard(
    superset: Superset,  # noqa: F811
) -> None:
    slug = PARTNERS[0]
    analyst_only = [s for s in DASHBOARD_SLUGS if s not in PARTNER_DASHBOARDS]
    reports = open_dashboards(
        superset, [*PARTNER_DASHBOARDS, *analyst_only], slug, superset.partner_password_file(slug)
    )
    for name in PARTNER_DASHBOARDS:
        report = reports[name]
        assert report["status"] == "ok" and report["errors"] == [], report
        assert report["rendered"] + report["empty"] == report["charts"] > 0, report
    plan = reports["strategic-plan"]
    assert plan["rendered"] == plan["charts"], "a partner sees the whole plan, every chart drawn"
    for name in analyst_only:
        assert reports[name]["status"] in ("forbidden", "not_found"), reports[name]
        assert reports[name]["charts"] == 0 and reports[name]["rendered"] == 0, reports[name]

    # What the charts of My feeds return for this user: its own rows, never another partner's.
    partner = superset.as_user(slug, superset.partner_password_file(slug).read_text().strip())
    listed = {d["slug"] for d in partner.listing("dashboard", ["slug"])}
    assert listed == set(PARTNER_DASHBOARDS)
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
