"""The programme partners of the sample world and the themes of their programmes.

Shared by the IATI activity files, the partner-result uploads and the HXL displacement files, so
every file about a partner tells the same story.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUSEHOLD_SIZE = 4.6


@dataclass(frozen=True, slots=True)
class Partner:
    """A programme partner: who it is in IATI, where it works, which themes it runs."""

    slug: str
    ref: str  # IATI organisation identifier of the reporting org
    name: str
    org_type: str  # IATI OrganisationType
    countries: tuple[str, ...]  # ISO3
    themes: tuple[str, ...]  # cycled over its cities in code order
    funder: tuple[str, str, str]  # (ref, type, name) of the donor
    humanitarian: bool = False
    reports_displacement: bool = False  # publishes an HXL displacement file


PARTNERS = (
    Partner(
        "urban-futures",
        "GB-CHC-1180001",
        "Urban Futures Partnership",
        "21",
        ("ETH", "KEN", "RWA", "TZA", "UGA"),
        ("basic_services", "women_gender_equality", "slum_upgrading_housing"),
        ("GB-GOV-1", "10", "Foreign, Commonwealth and Development Office"),
    ),
    Partner(
        "habitat-asia",
        "NL-KVK-41234567",
        "Habitat Asia Collective",
        "21",
        ("BGD", "IND", "KHM", "PHL"),
        ("slum_upgrading_housing", "resilience_climate", "basic_services"),
        ("XI-IATI-EC_INTPA", "15", "European Commission - International Partnerships"),
    ),
    Partner(
        "resilient-cities-fund",
        "US-EIN-521234567",
        "Resilient Cities Fund",
        "60",
        ("GHA", "HND", "MOZ", "NGA", "PER", "SLE", "ZMB"),
        ("resilience_climate", "economy_investments", "basic_services"),
        ("GB-GOV-1", "10", "Foreign, Commonwealth and Development Office"),
    ),
    Partner(
        "displacement-cities",
        "XI-IATI-CDPN",
        "Cities for Displaced People Network",
        "22",
        ("ETH", "KEN", "NGA", "SOM", "UGA"),
        ("migration_cities", "women_gender_equality"),
        ("XI-IATI-EC_INTPA", "15", "European Commission - International Partnerships"),
        humanitarian=True,
        reports_displacement=True,
    ),
)

#: Title and description of a programme of each theme, and the partner-result indicator
#: (id, unit, share of the people reached it counts) the partner reports outside IATI.
THEMES: dict[str, tuple[str, str, tuple[str, str, float]]] = {
    "slum_upgrading_housing": (
        "Incremental housing and slum upgrading",
        "Secure tenure, incremental home improvements and community savings in informal "
        "settlements.",
        ("households_upgraded", "households", 0.25 / HOUSEHOLD_SIZE),
    ),
    "basic_services": (
        "Water, sanitation and energy for informal settlements",
        "Water kiosks, shared sanitation blocks and prepaid electricity connections run with "
        "residents' committees.",
        ("households_connected", "households", 0.2 / HOUSEHOLD_SIZE),
    ),
    "resilience_climate": (
        "Flood resilience and climate adaptation",
        "Drainage, early warning and flood-proofed homes in the most exposed neighbourhoods.",
        ("households_flood_protected", "households", 0.3 / HOUSEHOLD_SIZE),
    ),
    "economy_investments": (
        "Jobs and small-business finance",
        "Credit lines, market infrastructure and training for informal-economy enterprises.",
        ("jobs_created", "jobs", 0.04),
    ),
    "women_gender_equality": (
        "Safe public spaces and livelihoods for women",
        "Lighting, safe markets and savings groups for women traders and residents.",
        ("women_led_enterprises_supported", "enterprises", 0.03),
    ),
    "migration_cities": (
        "Services for displaced people and host communities",
        "Shelter, documentation and access to city services for displaced people and their hosts.",
        ("displaced_households_assisted", "households", 0.3 / HOUSEHOLD_SIZE),
    ),
}
#: ref_themes codes that the partner.result.v1 contract spells differently.
RESULT_THEME_CODES = {"resilience_climate": "resilience_climate_change"}
