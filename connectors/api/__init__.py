"""The partner push API: partners POST CloudEvents or CSV/XLSX files; valid events go to Kafka.

`urbanflow api serve` runs `connectors.api.app.create_app()`; `urbanflow partners add|list|revoke`
manages who may push. This package root stays free of FastAPI so other CLI commands start fast.
"""

from __future__ import annotations

from connectors.api.partners import Partner, PartnerStore
from connectors.settings import ApiSettings

__all__ = ["ApiSettings", "Partner", "PartnerStore"]
