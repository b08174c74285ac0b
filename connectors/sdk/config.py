"""Typed source settings from YAML, `--set key=value` and the environment; unknown keys refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import yaml

from connectors.errors import ConfigError


class Secret(str):
    """A string that never prints itself: config dumps, errors and logs show `***`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        return str.__str__(self)


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError(f"cannot read {kind}")


def _from_env(source: str) -> dict[str, str]:
    """UF_SOURCE_<NAME>_<KEY>=value, e.g. UF_SOURCE_WORLDBANK_API_KEY."""
    prefix = f"UF_SOURCE_{source.upper()}_"
    return {k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}


def _parse_assignment(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw else ""


def load_config(
    source: str,
    config_type: type[msgspec.Struct],
    *,
    file: Path | None = None,
    assignments: list[str] = (),  # type: ignore[assignment]
    overrides: dict[str, Any] | None = None,
) -> msgspec.Struct:
    """Merge environment < file < --set < overrides and validate against the source's Struct."""
    merged: dict[str, Any] = dict(_from_env(source))
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: expected a mapping of settings")
        merged.update(loaded)
    merged.update(dict(_parse_assignment(a) for a in assignments))
    merged.update(overrides or {})
    try:
        return msgspec.convert(merged, config_type, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        where = f" (from {file})" if file else ""
        raise ConfigError(f"source {source!r} config{where}: {exc}") from None


def describe_config(config_type: type[msgspec.Struct]) -> list[tuple[str, str, bool, str]]:
    """(key, type, required, default) per setting, for `urbanflow source list`."""
    info = msgspec.inspect.type_info(config_type)
    rows = []
    for field in info.fields:  # type: ignore[attr-defined]
        kind = type(field.type).__name__.replace("Type", "").lower()
        default = "" if field.required else repr(field.default)
        rows.append((field.name, kind, field.required, default))
    return rows
