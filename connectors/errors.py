"""Errors a user can act on. Each message names the file, record, field or setting at fault."""

from __future__ import annotations


class UrbanFlowError(Exception):
    """Base class: the CLI prints these as one clear line and exits non-zero, no traceback."""


class ConfigError(UrbanFlowError):
    """A setting or environment variable is missing or invalid."""


class BrokerUnavailableError(UrbanFlowError):
    """Kafka cannot be reached at the configured bootstrap servers."""


class ContractError(UrbanFlowError):
    """A record does not satisfy its JSON Schema contract (or the envelope)."""

    def __init__(self, message: str, *, contract: str | None = None, path: str | None = None):
        self.contract = contract
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"{message}{where}" + (f" (contract {contract})" if contract else ""))


class SourceFormatError(UrbanFlowError):
    """An input file or response is malformed; names the origin (file or URL) and line."""

    def __init__(self, origin: str, message: str, *, line: int | None = None):
        self.origin = origin
        self.line = line
        self.reason = message
        location = f"{origin}:{line}" if line is not None else origin
        super().__init__(f"{location}: {message}")


class DeliveryError(UrbanFlowError):
    """Kafka did not confirm delivery; the source keeps its previous state so nothing is lost."""
