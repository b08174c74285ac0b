"""Open Superset dashboards in headless Chromium as one user: did every chart render, did any fail?

Runs inside .venv-superset (Playwright from PyPI) against Debian's Chromium (`/usr/bin/chromium`,
`UF_CHROMIUM`): Playwright never downloads a browser here. Prints one JSON object per line:

    {"dashboard": slug, "url": ..., "status": "ok" | "login" | "forbidden" | "not_found",
     "charts": n, "rendered": n, "empty": n, "errors": ["<chart>: <message>", ...],
     "screenshot": path}

`--anonymous` opens the dashboards without signing in (the expected answer is the login page).
Waits are for a condition (every chart holder shows a canvas/svg, an empty-state or an error) with
a generous deadline, never a fixed sleep.

    .venv-superset/bin/python infra/superset/browser.py --url http://127.0.0.1:8088 \\
        --user admin --password-file var/superset/admin_password --screenshots var/screenshots \\
        strategic-plan pipeline-health
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

CHROMIUM = os.environ.get("UF_CHROMIUM", "/usr/bin/chromium")
#: Headless on a small machine, offline: no sandbox (containers), no GPU, small /dev/shm, and no
#: name resolution except loopback (the frontend asks an outside telemetry pixel).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

# Chart holders and their final states in Superset 6.1's dashboard page.
# A chart is drawn once its slice container (absent while "Waiting on <database>") holds a canvas,
# an svg, a table or a big number; empty once it holds the empty-state; failed on an error alert.
CHART_HOLDER = "[data-test=dashboard-component-chart-holder]"
_SLICE = "[data-test=slice-container]"
RENDERED = ", ".join(
    f"{_SLICE} {s}" for s in ("canvas", "svg", "table", ".superset-legacy-chart-big-number")
)
EMPTY = f"{_SLICE} .ant-empty"
ERROR = "[data-test=chart-container] .ant-alert-error, [data-test=chart-container] [role=alert]"

_STATE_JS = """([holder, rendered, empty, error]) => {
  const out = [];
  for (const node of document.querySelectorAll(holder)) {
    const named = node.querySelector('[data-test-chart-name]');
    const title = named ? named.getAttribute('data-test-chart-name') : '';
    const err = node.querySelector(error);
    out.push({
      title,
      error: err ? err.innerText.trim().slice(0, 300) : null,
      rendered: !!node.querySelector(rendered),
      empty: !!node.querySelector(empty),
    });
  }
  return out;
}"""


def sign_in(page, url: str, user: str, password: str, timeout_ms: int) -> None:
    page.goto(f"{url}/login/", wait_until="domcontentloaded", timeout=timeout_ms)
    page.fill("[data-test=username-input]", user, timeout=timeout_ms)
    page.fill("[data-test=password-input]", password)
    page.click("[data-test=login-button]")
    page.wait_for_url(lambda u: "/login" not in u, timeout=timeout_ms)


def check_dashboard(page, url: str, slug: str, timeout_ms: int, shots: Path | None) -> dict:
    target = f"{url}/superset/dashboard/{slug}/"
    response = page.goto(target, wait_until="domcontentloaded", timeout=timeout_ms)
    result: dict = {"dashboard": slug, "url": target, "charts": 0, "rendered": 0, "empty": 0}
    result["errors"] = []
    if "/login" in page.url:
        result["status"] = "login"
        return result
    if response is not None and response.status in (403, 404):
        result["status"] = "forbidden" if response.status == 403 else "not_found"
        return result
    try:
        page.wait_for_selector(CHART_HOLDER, timeout=timeout_ms)
    except Exception:  # Playwright's TimeoutError: the page says why (no access, not found)
        text = page.inner_text("body")[:500]
        result["status"] = "forbidden" if page.url != target or text else "no_charts"
        result["page"] = text
        return result
    page.wait_for_function(
        """([holder, rendered, empty, error]) => {
             const nodes = [...document.querySelectorAll(holder)];
             return nodes.length > 0 && nodes.every(n =>
               n.querySelector(rendered) || n.querySelector(empty) || n.querySelector(error));
           }""",
        arg=[CHART_HOLDER, RENDERED, EMPTY, ERROR],
        timeout=timeout_ms,
    )
    states = page.evaluate(_STATE_JS, [CHART_HOLDER, RENDERED, EMPTY, ERROR])
    result["status"] = "ok"
    result["charts"] = len(states)
    result["rendered"] = sum(
        1 for s in states if s["rendered"] and not s["empty"] and not s["error"]
    )
    result["chart_titles"] = [s["title"] for s in states]
    result["empty"] = sum(1 for s in states if s["empty"])
    result["errors"] = [f"{s['title']}: {s['error']}" for s in states if s["error"]]
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        path = shots / f"{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        result["screenshot"] = str(path)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dashboards", nargs="+", help="dashboard slugs")
    parser.add_argument("--url", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--anonymous", action="store_true")
    parser.add_argument("--screenshots", type=Path)
    parser.add_argument("--timeout", type=float, default=180, help="seconds per wait")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"browser.py: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    timeout_ms = int(args.timeout * 1000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            if not args.anonymous:
                password = args.password_file.read_text(encoding="utf-8").strip()
                sign_in(page, args.url, args.user, password, timeout_ms)
            for slug in args.dashboards:
                print(
                    json.dumps(check_dashboard(page, args.url, slug, timeout_ms, args.screenshots))
                )
                sys.stdout.flush()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
