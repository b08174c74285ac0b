"""No API key, password or secret value the suite created appears in any log line or error.

Runs last in the session (tests/reliability/conftest.py), after every test that registered a
secret with `secrets_registry` (partner keys, Airflow and Superset passwords, generated secret
files). It scans, for every registered value and every UF_*PASSWORD/SECRET/_KEY variable set:
the log-like files (see tests/secrets_registry.py: *.log, *.jsonl, stdout/stderr captures,
anything under `logs/`; never the password files or databases that hold secrets on purpose)
under the run's var dir (UF_VAR_DIR, set by tests/run.sh), pytest's tmp_path tree and any folder
a test watched; and every test's captured output and failure text (tests/conftest.py).
What session-scoped fixtures write while stopping, after this test, is not scanned.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import secrets_registry

pytestmark = pytest.mark.integration


def test_no_secret_the_suite_created_appears_in_any_log_or_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    secrets_registry.register_environment(os.environ)
    secrets = secrets_registry.registered()
    roots = [tmp_path_factory.getbasetemp(), *secrets_registry.watched()]
    if os.environ.get("UF_VAR_DIR"):
        roots.append(Path(os.environ["UF_VAR_DIR"]))
    files = secrets_registry.log_files(root for root in roots if root.is_dir())
    captured = secrets_registry.captured()

    leaks = [leak for path in files for leak in secrets_registry.scan_file(path, secrets)]
    leaks += [
        leak
        for label, text in captured
        for leak in secrets_registry.scan_text(f"captured output of {label}", text, secrets)
    ]

    print(f"scanned {len(files)} log files and {len(captured)} captures for {len(secrets)} secrets")
    assert secrets, (
        "no test of this session registered a secret: run the scan after the suites that make "
        "them (e.g. with tests/reliability/test_security.py)"
    )
    assert files, f"no log file under {[str(r) for r in roots]}: the scan would prove nothing"
    if leaks:  # not `assert not leaks`: pytest would print the list it compared
        pytest.fail(
            f"{len(leaks)} secret(s) found in {len(files)} log files and {len(captured)} "
            "captures (values masked):\n" + "\n".join(map(str, leaks)),
            pytrace=False,
        )
