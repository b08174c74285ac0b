"""Settings of the partner push API, from environment variables with local defaults.

Kept apart from connectors.settings because only the API reads them; the Kafka bootstrap, the
topics file and UF_VAR_DIR still come from there so every process agrees on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from connectors.settings import Settings, _int


@dataclass(frozen=True)
class ApiSettings:
    """Resolved API settings. Build with `ApiSettings.from_env()` so tests can set the env."""

    base: Settings
    partners_db: Path
    host: str
    port: int
    max_body_bytes: int
    max_file_bytes: int
    max_batch: int
    rate_per_s: int
    rate_burst: int
    key_cache_s: int
    linger_ms: int

    @classmethod
    def from_env(cls) -> ApiSettings:
        base = Settings.from_env()
        return cls(
            base=base,
            partners_db=Path(
                os.environ.get("UF_PARTNERS_DB") or base.var_dir / "partners.sqlite"
            ).resolve(),
            host=os.environ.get("UF_API_HOST") or "127.0.0.1",
            port=_int("UF_API_PORT", 8080),
            max_body_bytes=_int("UF_API_MAX_BODY_BYTES", 1024 * 1024),
            max_file_bytes=_int("UF_API_MAX_FILE_BYTES", 10 * 1024 * 1024),
            max_batch=_int("UF_API_MAX_BATCH", 500),
            rate_per_s=_int("UF_API_RATE_PER_S", 50),
            rate_burst=_int("UF_API_RATE_BURST", 100),
            key_cache_s=_int("UF_API_KEY_CACHE_S", 60, minimum=0),
            linger_ms=_int("UF_API_LINGER_MS", 5, minimum=0),
        )
