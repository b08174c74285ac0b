"""Source state (cursors, what was sent), checkpointed only after Kafka confirmed delivery.

One JSON file per source under UF_STATE_DIR, replaced atomically: a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from connectors.errors import ConfigError


class StateStore:
    def __init__(self, state_dir: Path, source_name: str):
        self.path = state_dir / f"{source_name}.json"

    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"state file {self.path} is corrupt at line {exc.lineno} ({exc.msg}); "
                "delete it to re-send everything (the warehouse deduplicates)"
            ) from None

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, sort_keys=True, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)
