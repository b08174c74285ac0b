"""City-utility constants: topics, KPI CSV columns and the simulated fleet's shape.

Kept apart from the generators and parsers so the contracts, the CSV header check and the tests
read the same lists.
"""

from __future__ import annotations

from typing import Literal

SOURCE_NAME = "utilities"

READINGS_TOPIC = "utility.meter.reading.v1"
OUTAGES_TOPIC = "utility.service.outage.v1"
KPI_TOPIC = "utility.kpi.monthly.v1"
READING_TYPE = "org.urbanflow.utility.meter_reading.v1"
OUTAGE_TYPE = "org.urbanflow.utility.outage.v1"
KPI_TYPE = "org.urbanflow.utility.kpi.v1"

Service = Literal["water", "electricity"]
SERVICES: tuple[Service, ...] = ("water", "electricity")

#: Per service: meter kind, unit, whether the value is a running register, meter-id letter,
#: site-id letter (K = kiosk, F = feeder) and the mean amount between two readings.
METER_KINDS: dict[str, tuple[str, str, bool, str, str, float]] = {
    "water": ("water_kiosk", "m3", False, "W", "K", 0.12),
    "electricity": ("prepaid_electricity", "kWh", True, "E", "F", 0.35),
}
#: Share of simulated meters that are water kiosks; the rest are prepaid electricity meters.
WATER_SHARE = 0.4
#: Meters sharing one kiosk (water) or one distribution feeder (electricity).
METERS_PER_SITE = {"water": 2, "electricity": 40}

#: A late reading was measured this many minutes before it is sent (inclusive range).
LATE_MINUTES = (5.0, 120.0)
#: An on-time reading was measured up to this many seconds before it is sent.
ON_TIME_JITTER_S = 5.0

#: Causes an outage of each service is drawn from (the contract's enum is their union).
OUTAGE_CAUSES: dict[str, tuple[str, ...]] = {
    "water": (
        "planned_maintenance",
        "pipe_burst",
        "equipment_failure",
        "supply_shortage",
        "vandalism",
        "unknown",
    ),
    "electricity": (
        "planned_maintenance",
        "equipment_failure",
        "load_shedding",
        "weather",
        "vandalism",
        "unknown",
    ),
}
#: How long a simulated outage lasts, in seconds (inclusive range).
OUTAGE_SECONDS = (5.0, 600.0)
OUTAGE_CUSTOMERS = (20, 20_000)

#: KPI CSV drops (definitions as in IBNET, the World Bank's utility benchmarking network: coverage
#: is the share of the population served, hours of supply the daily continuity, non-revenue water
#: the share of water produced that is not billed). The header must hold every required column
#: and nothing unknown, so a misspelt column is refused rather than silently left out.
KPI_REQUIRED_COLUMNS = (
    "city_code",
    "utility",
    "service",
    "month",
    "coverage_pct",
    "hours_of_supply_per_day",
    "connections",
)
#: Electricity utilities may leave this column out; water rows must fill it.
KPI_OPTIONAL_COLUMNS = ("non_revenue_water_pct",)
KPI_SUFFIX = ".csv"
