"""`urbanflow source run sdmx` on unreadable inputs: exit 1, one line naming input and problem,
no traceback, nothing sent, no state saved (a real broker, the installed CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.topics import apply_topics, load_topics
from connectors.sources import sdmx

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sdmx"


def _end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def _bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    truncated = folder / "truncated.xml"
    truncated.write_bytes((FIXTURES / "ecb_exr_ml21_generic_ts.xml").read_bytes()[:3000])
    garbage = folder / "garbage.json"
    garbage.write_bytes(b'{"data": {"structures": [' + b"\xff\xfe" * 10)
    return {
        "truncated SDMX-ML": (truncated, "not a readable SDMX-ML message"),
        "structure-specific without its DSD": (
            FIXTURES / "ecb_exr_ml21_ss_ts.xml",
            "needs its data structure definition ECB:ECB_EXR_NG(1.0)",
        ),
        "undecodable SDMX-JSON": (garbage, "not UTF-8 text"),
    }


@pytest.mark.parametrize(
    "case",
    ["truncated SDMX-ML", "structure-specific without its DSD", "undecodable SDMX-JSON"],
)
def test_an_unreadable_input_is_refused_in_one_line_and_nothing_is_sent(settings, tmp_path, case):
    apply_topics(settings.kafka_bootstrap, load_topics(settings.topics_file))
    path, problem = _bad_inputs(tmp_path)[case]
    before = _end_offsets(settings.kafka_bootstrap, sdmx.TOPIC)

    result = subprocess.run(
        [str(Path(sys.executable).with_name("urbanflow")), "source", "run", "sdmx", str(path)],
        env={
            **os.environ,
            "UF_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "UF_STATE_DIR": str(settings.state_dir),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {path}: ")
    assert problem in errors[0]
    assert _end_offsets(settings.kafka_bootstrap, sdmx.TOPIC) == before
    assert not (settings.state_dir / "sdmx.json").exists()
