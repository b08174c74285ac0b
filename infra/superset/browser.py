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
import contextlib
import json
import os
import sys
import time
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

#: Interval between two frames compared by `_screenshot` (polling, not a wait for speed).
STABLE_POLL_MS = 500
STABLE_MAX_MS = 30_000
#: How often a dashboard whose charts vanished right after drawing (a re-mount) is looked at again.
REDRAW_ATTEMPTS = 3

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

_ALL_DRAWN_JS = """([holder, rendered, empty, error]) => {
  const nodes = [...document.querySelectorAll(holder)];
  return nodes.length > 0 && nodes.every(n =>
    n.querySelector(rendered) || n.querySelector(empty) || n.querySelector(error));
}"""

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


#: Sign-in attempts: Superset rate-limits logins per address (AUTH_RATE_LIMIT, 5 per second), so
#: a login beside other clients' may be turned away once; the next attempt waits a moment.
SIGN_IN_ATTEMPTS = 3


def sign_in(page, url: str, user: str, password: str, timeout_ms: int) -> None:
    """Sign in through the login form, until the session really is signed in (`/api/v1/me/`)."""
    for attempt in range(1, SIGN_IN_ATTEMPTS + 1):
        page.goto(f"{url}/login/", wait_until="domcontentloaded", timeout=timeout_ms)
        page.fill("[data-test=username-input]", user, timeout=timeout_ms)
        page.fill("[data-test=password-input]", password)
        page.click("[data-test=login-button]")
        page.wait_for_url(lambda u: "/login" not in u, timeout=timeout_ms)
        me = page.request.get(f"{url}/api/v1/me/", fail_on_status_code=False)
        if me.status == 200 or attempt == SIGN_IN_ATTEMPTS:
            return
        page.wait_for_timeout(2_000 * attempt)


_REFUSED_JS = """([holder, path]) => document.querySelector(holder)
  || !location.pathname.startsWith(path)
  || document.querySelector('.ant-result, [role=alert], [data-test=toast-container] *')"""


def _refused(page, url: str, slug: str) -> int | None:
    """The status the dashboard API gives this browser session (its cookies) when it refuses."""
    answer = page.request.get(f"{url}/api/v1/dashboard/{slug}", fail_on_status_code=False)
    return answer.status if answer.status in (401, 403, 404) else None


def check_dashboard(page, url: str, slug: str, timeout_ms: int, shots: Path | None) -> dict:
    target = f"{url}/superset/dashboard/{slug}/"
    refused = None if "/login" in page.url else _refused(page, url, slug)
    response = page.goto(target, wait_until="domcontentloaded", timeout=timeout_ms)
    result: dict = {"dashboard": slug, "url": target, "charts": 0, "rendered": 0, "empty": 0}
    result["errors"] = []
    if "/login" in page.url:
        result["status"] = "login"
        _screenshot(page, shots, slug, result, timeout_ms)
        return result
    if refused is None and response is not None and response.status in (403, 404):
        refused = response.status
    if refused is not None:
        # What the user is shown instead: the page leaves the dashboard or says why; either way
        # not one chart may be drawn.
        result["status"] = "not_found" if refused == 404 else "forbidden"
        # The server's own 403/404 page has no script to wait for; the app's page (200) shows
        # the refusal itself. Bounded: the API has already refused, this waits for what is shown.
        if response is None or response.status not in (403, 404):
            # Playwright's TimeoutError: the page stayed blank, which is no chart either
            with contextlib.suppress(Exception):
                page.wait_for_function(
                    _REFUSED_JS,
                    arg=[CHART_HOLDER, f"/superset/dashboard/{slug}"],
                    timeout=min(timeout_ms, 60_000),
                )
        states = page.evaluate(_STATE_JS, [CHART_HOLDER, RENDERED, EMPTY, ERROR])
        result["charts"] = len(states)
        result["rendered"] = sum(1 for s in states if s["rendered"])
        result["page"] = page.inner_text("body")[:500]
        _screenshot(page, shots, slug, result, timeout_ms)
        return result
    try:
        page.wait_for_selector(CHART_HOLDER, timeout=timeout_ms)
    except Exception:  # Playwright's TimeoutError: the page says why (no access, not found)
        text = page.inner_text("body")[:500]
        result["status"] = "forbidden" if page.url != target or text else "no_charts"
        result["page"] = text
        return result

    # Every chart drawn (or empty, or failed), and the page no longer changing (animations,
    # native filters re-querying), checked together so the report and the screenshot agree.
    def all_drawn() -> None:
        page.wait_for_function(
            _ALL_DRAWN_JS, arg=[CHART_HOLDER, RENDERED, EMPTY, ERROR], timeout=timeout_ms
        )

    # Superset may re-mount the grid once its native filters settle: the charts drawn a moment
    # ago are gone and come back. A frame with no chart holder left is taken again.
    for _ in range(REDRAW_ATTEMPTS):
        frame = _stable_frame(page, timeout_ms, all_drawn)
        states = page.evaluate(_STATE_JS, [CHART_HOLDER, RENDERED, EMPTY, ERROR])
        if states:
            break
    result["status"] = "ok"
    result["charts"] = len(states)
    result["rendered"] = sum(
        1 for s in states if s["rendered"] and not s["empty"] and not s["error"]
    )
    result["chart_titles"] = [s["title"] for s in states]
    result["empty_titles"] = [s["title"] for s in states if s["empty"]]
    result["empty"] = sum(1 for s in states if s["empty"])
    result["errors"] = [f"{s['title']}: {s['error']}" for s in states if s["error"]]
    _save(frame, shots, slug, result)
    return result


def _stable_frame(page, timeout_ms: int, ready=None) -> bytes:
    """A full-page frame once two in a row are identical (and `ready()` holds before each):
    ECharts draws a canvas, then animates bars and needles, so a first drawn frame may show them
    half grown. Polled for at most STABLE_MAX_MS (a page that never settles, e.g. a moving
    element, keeps its last frame): it decides what the picture shows, never a test outcome."""
    deadline = time.monotonic() + min(timeout_ms, STABLE_MAX_MS) / 1000
    frame = b""
    while True:
        if ready is not None:
            ready()
        again = page.screenshot(full_page=True, animations="disabled")
        if again == frame or time.monotonic() > deadline:
            return again
        frame = again
        page.wait_for_timeout(STABLE_POLL_MS)


def _save(frame: bytes, shots: Path | None, slug: str, result: dict) -> None:
    if shots is None:
        return
    shots.mkdir(parents=True, exist_ok=True)
    path = shots / f"{slug}.png"
    path.write_bytes(frame)
    result["screenshot"] = str(path)


def _screenshot(page, shots: Path | None, slug: str, result: dict, timeout_ms: int) -> None:
    if shots is not None:
        _save(_stable_frame(page, timeout_ms), shots, slug, result)


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
