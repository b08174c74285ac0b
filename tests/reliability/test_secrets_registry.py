"""The secret scanner itself, on planted secrets: it finds them in logs by file and line, never
prints them, leaves alone the files meant to hold them, and reads large logs in chunks exactly as
it would read them whole. These tests use their own registries, never the session's."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
import secrets_registry
from secrets_registry import Secret

KEY = Secret("uf_acme_" + "k3Y" * 15, "partner API key")
PASSWORD = Secret("s3cret-Passw0rd", "Airflow admin password")


def plant(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_planted_secret_is_reported_by_file_and_line_masked_and_only_in_logs(tmp_path):
    task_log = plant(
        tmp_path,
        "airflow/logs/dag_id=x/run_id=y/task_id=z/attempt=1.log",
        f"starting\nconnecting\nAuthorization: Bearer {KEY.value}\nagain {KEY.value}\n",
    )
    plant(tmp_path, "api/rejections/2026-12-01.host-1.jsonl", '{"reason": "no key here"}\n')
    plant(tmp_path, "sink/sink.log", f"password from $UF_AIRFLOW_ADMIN_PASSWORD\n{PASSWORD.kind}\n")
    # Meant to hold secrets, or data rather than logs: not scanned.
    plant(tmp_path, "airflow/admin_password", PASSWORD.value)
    plant(tmp_path, "superset/partners/acme.password", KEY.value)
    plant(tmp_path, "kafka/data/partner.push-0/00000000000000000000.log", KEY.value)

    files = secrets_registry.log_files([tmp_path, tmp_path / "airflow"])  # nested roots: once
    leaks = [leak for f in files for leak in secrets_registry.scan_file(f, [KEY, PASSWORD])]

    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "airflow/logs/dag_id=x/run_id=y/task_id=z/attempt=1.log",
        "api/rejections/2026-12-01.host-1.jsonl",
        "sink/sink.log",
    ]
    assert [(leak.where, leak.line, leak.secret, leak.count) for leak in leaks] == [
        (str(task_log), 3, KEY, 2)
    ]
    report = str(leaks[0])
    assert report.startswith(f"{task_log}:3: partner API key ({len(KEY.value)} chars, sha256 ")
    assert report.endswith("…) (2 times)")
    assert KEY.value not in report and KEY.value[8:20] not in report


def test_captured_output_is_scanned_like_a_file():
    text = "collected\n" + f"AssertionError: {PASSWORD.value!r} != ''\n"

    (leak,) = secrets_registry.scan_text("tests/x.py::test_y (call: error)", text, [KEY, PASSWORD])

    assert (leak.where, leak.line, leak.secret) == ("tests/x.py::test_y (call: error)", 2, PASSWORD)


@pytest.mark.parametrize("chunk_bytes", [1, 2, 7, 15, 16, 50, 4096])
def test_reading_in_chunks_finds_what_reading_whole_finds(chunk_bytes):
    """Secrets across chunk boundaries, overlapping each other and repeated, every chunk size."""
    rng = random.Random(chunk_bytes)
    secrets = [KEY, PASSWORD, Secret("Passw0rd-2", "a second password")]
    pieces = [s.value for s in secrets] + ["\n", "x", "-2", "s3cret-", "uf_acme_", "k3Y"]
    for _ in range(20):
        content = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))).encode()

        leaks = secrets_registry.find(io.BytesIO(content), secrets, "f", chunk_bytes)

        whole = {
            s: (content.count(b"\n", 0, content.index(s.value.encode())) + 1, _count(content, s))
            for s in secrets
            if s.value.encode() in content
        }
        assert {leak.secret: (leak.line, leak.count) for leak in leaks} == whole


def _count(content: bytes, secret: Secret) -> int:
    """Occurrences, overlapping ones included (bytes.count skips those)."""
    needle = secret.value.encode()
    return sum(content.startswith(needle, i) for i in range(len(content)))


def test_registering_keeps_values_and_files_and_refuses_what_would_match_by_chance(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(secrets_registry, "_secrets", {})
    plant(tmp_path, "secrets/jwt_secret", "jwt-" + "j" * 40 + "\n")
    plant(tmp_path, "secrets/fernet_key", "fernet-" + "f" * 40 + "\n")
    plant(tmp_path, "admin_password", "not registered: not asked for")

    assert secrets_registry.register(f"  {KEY.value}\n", KEY.kind) == KEY.value
    assert secrets_registry.register_files(tmp_path, "secrets/*", kind="Airflow secret") == 2
    assert secrets_registry.register_files(tmp_path, "missing/*", kind="none yet") == 0
    secrets_registry.register_environment(
        {"UF_AIRFLOW_ADMIN_PASSWORD": PASSWORD.value, "UF_API_PORT": "80808080", "UF_X_KEY": "1"}
    )
    with pytest.raises(ValueError, match="too short"):
        secrets_registry.register("1234567", "PIN")

    assert {(s.value, s.kind) for s in secrets_registry.registered()} == {
        (KEY.value, KEY.kind),
        ("fernet-" + "f" * 40, "Airflow secret (fernet_key)"),
        ("jwt-" + "j" * 40, "Airflow secret (jwt_secret)"),
        (PASSWORD.value, "$UF_AIRFLOW_ADMIN_PASSWORD"),
    }
