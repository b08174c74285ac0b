"""Reference data every layer shares: partner slugs now; cities and countries (from the dbt seeds
under UF_REFERENCE_DIR) are added here so sources, the API, dbt and the samples read one list."""

from __future__ import annotations

import re

#: A partner's slug: lowercase letters, digits and hyphens, 2-40 characters, not starting with
#: a hyphen. It names the partner in API keys and in its sources' URNs (`urn:partner:<slug>`).
PARTNER_SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
PARTNER_SLUG_RE = re.compile(PARTNER_SLUG_PATTERN)


def slugify(text: str) -> str:
    """A partner slug made from free text (an IATI organisation reference, a name)."""
    cleaned = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in cleaned.split("-") if part)
