"""Synthetic, contract-valid observation events in bulk, for load tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterator

from connectors.events import encode, make_event

OBSERVATION_TYPE = "org.urbanflow.stats.observation.v1"
_CITIES = ("KENBO", "UGKLA", "TZDAR", "ETADD", "NGLOS", "GHACC", "BDDAC", "PHMNL", "PELIM", "MZMPM")
_SERIES = ("EN_LND_SLUM", "SH_H2O_SAFE", "SH_SAN_SAFE", "EG_ELC_ACCS")


def observation_events(
    count: int, *, start: int = 0, target_bytes: int = 1024
) -> Iterator[tuple[str, bytes]]:
    """(message key, encoded CloudEvent) pairs of about `target_bytes` each, with unique ids."""
    for n in range(start, start + count):
        city = _CITIES[n % len(_CITIES)]
        series = _SERIES[(n // len(_CITIES)) % len(_SERIES)]
        series_key = f"A.{city[:2]}.{city}.{series}._T"
        data = {
            "dataflow": "SYNTH:DF_CITY_SDG(1.0)",
            "series_key": series_key,
            "dimensions": {"FREQ": "A", "CITY": city, "SERIES": series, "SEX": "_T"},
            "attributes": {"UNIT_MEASURE": "PT", "OBS_STATUS": "A", "SOURCE_DETAIL": ""},
            "time_period": str(2000 + n % 24),
            "value": round((n * 7.31) % 100, 1),
        }
        event = make_event(
            OBSERVATION_TYPE,
            "urn:nso:synth",
            data,
            event_id=f"synth-{n}",
            subject=city,
            time="2026-01-01T00:00:00Z",
            validate=False,
        )
        data["attributes"]["SOURCE_DETAIL"] = "x" * max(0, target_bytes - len(encode(event)))
        yield series_key, encode(event)
