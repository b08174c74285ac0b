"""Each package under connectors/sources/ exposing `SOURCE` is a source: no list to edit."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import connectors.sources as sources_package
from connectors.errors import ConfigError
from connectors.sdk import Source


@cache
def all_sources() -> dict[str, Source]:
    found: dict[str, Source] = {}
    for module in pkgutil.iter_modules(sources_package.__path__):
        if not module.ispkg:
            continue
        source = getattr(
            importlib.import_module(f"connectors.sources.{module.name}"), "SOURCE", None
        )
        if isinstance(source, Source):
            found[source.name] = source
    return dict(sorted(found.items()))


def get_source(name: str) -> Source:
    try:
        return all_sources()[name]
    except KeyError:
        known = ", ".join(all_sources()) or "none"
        raise ConfigError(f"unknown source {name!r}; known sources: {known}") from None
