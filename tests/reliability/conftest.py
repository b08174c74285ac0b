"""The reliability suite's ordering: the secret scan needs every other test's logs, so it runs
last in the session, whichever order the files were collected or named in."""

from __future__ import annotations

import pytest

#: The module whose tests read what the whole run left behind.
RUNS_LAST = "test_secret_scan.py"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the scan to the end (a stable sort keeps every other test's order)."""
    items.sort(key=lambda item: item.path.name == RUNS_LAST)
