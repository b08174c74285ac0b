"""The sample world's IATI files -> real Kafka -> sink -> `dbt build` -> fct_funds_leveraged,
checked against the co-financing computed here from the same files and `ref_partners`.

The IATI topics hold whatever earlier runs sent; the sample world's events keep their ids on every
run (so they are loaded once), and the assertions keep to the sample partners' URNs.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.sdk import run_source
from connectors.sdk.state import StateStore
from connectors.sink import Sink
from connectors.sources import iati
from connectors.sources.iati.helpers import IatiActivity, parse_iati_activities
from connectors.transform import run_dbt

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SAMPLE_IATI = REPO / "sample_data" / "iati"
SEEDS = REPO / "dbt_project" / "seeds"
#: IATI incoming transaction types and the mart column each one feeds.
INCOMING = {"11": "incoming_commitments", "1": "incoming_funds", "13": "incoming_pledges"}
#: (activity_id, theme_code, co-financier type code, year) -> mart column -> value
Expected = dict[tuple[str, str, str, int], dict[str, float]]


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _theme_shares(sectors: list[dict], themes: dict[str, str]) -> list[tuple[str, float]]:
    """(theme, share) of each DAC sector: its percentage, else an equal split; else unassigned."""
    dac = [s for s in sectors if s["vocabulary"] == "1"]
    return [
        (
            themes.get(s["code"], "unassigned"),
            s["percentage"] / 100 if s["percentage"] is not None else 1 / len(dac),
        )
        for s in dac
    ] or [("unassigned", 1.0)]


def _co_financing(activity: IatiActivity, excluded: set[str]) -> list[dict]:
    """The activity's incoming transactions whose provider is outside the partnership."""
    return [
        t
        for t in activity.transactions
        if t["type_code"] in INCOMING and t["provider_org"]["ref"] not in excluded
    ]


def expected_funds_leveraged(activities: list[IatiActivity]) -> Expected:
    """Per activity, theme, co-financier type and year: the yearly flows, the increase of each
    co-financier's max(cumulative committed, cumulative received), the own commitment (type 2)
    and their ratio."""
    themes = {r["sector_code"]: r["theme_code"] for r in _seed("ref_iati_sector_themes")}
    partners = {p["iati_org_ref"]: p for p in _seed("ref_partners")}
    expected: Expected = defaultdict(lambda: defaultdict(float))
    for activity in activities:
        funder = partners[activity.reporting_org_ref]["core_funder_ref"]
        incoming = _co_financing(activity, {*partners, funder})
        own: dict[str, float] = defaultdict(float)
        for t in activity.transactions:
            if t["type_code"] == "2":
                for theme, share in _theme_shares(t["sectors"] or activity.data["sectors"], themes):
                    own[theme] += t["value"] * share
        # co-financier (ref, type, theme) -> year -> type code -> value
        flows: dict[tuple, dict[int, dict[str, float]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(float))
        )
        for t in incoming:
            provider = t["provider_org"]
            for theme, share in _theme_shares(t["sectors"] or activity.data["sectors"], themes):
                key = (provider["ref"], provider["type"], theme)
                flows[key][int(t["date"][:4])][t["type_code"]] += t["value"] * share
        for (_, type_code, theme), years in flows.items():
            committed = received = secured = 0.0
            for year in sorted(years):
                row = expected[activity.identifier, theme, type_code, year]
                for code, column in INCOMING.items():
                    row[column] += years[year][code]
                committed += years[year]["11"]
                received += years[year]["1"]
                row["funds_leveraged"] += max(committed, received) - secured
                secured = max(committed, received)
                row["own_commitment"] = own[theme]
    for row in expected.values():
        row["leverage_ratio"] = row["funds_leveraged"] / row["own_commitment"]
    return expected


def test_funds_leveraged_match_the_co_financing_in_the_sample_iati_files(settings):
    files = [
        parse_iati_activities(p.read_bytes(), str(p)) for p in sorted(SAMPLE_IATI.glob("*.xml"))
    ]
    activities = [a for f in files for a in f.activities]
    urns = sorted({iati.source_urn(a.reporting_org_ref) for a in activities})
    topics = load_topics(settings.topics_file)
    apply_topics(settings.kafka_bootstrap, topics)
    with EventProducer(settings.kafka_bootstrap) as producer:
        config = iati.IatiConfig(inputs=[str(SAMPLE_IATI)])
        run_source(iati.SOURCE, config, producer, StateStore(settings.state_dir, "iati"))
    Sink(settings, [t for t in topics if t.sink]).run(until_caught_up=True)
    run_dbt(settings, ["build"], capture=True)

    columns = [*INCOMING.values(), "funds_leveraged", "own_commitment", "leverage_ratio"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            f"""select activity_id, theme_code, co_financier_type_code, transaction_year,
                       {", ".join(columns)}
                from marts.fct_funds_leveraged
                where partner_urn in (select unnest(?)) and currency = 'USD'""",
            [urns],
        ).fetchall()
        per_partner = dict(
            con.execute(
                """select partner_code, sum(funds_leveraged) from marts.fct_funds_leveraged
                   where partner_urn in (select unnest(?)) group by all""",
                [urns],
            ).fetchall()
        )
    actual = {tuple(row[:4]): dict(zip(columns, row[4:], strict=True)) for row in rows}
    expected = expected_funds_leveraged(activities)

    co_financed = {activity_id for activity_id, *_ in expected}
    assert len(co_financed) >= 20, "the sample world should co-finance about half the activities"
    assert {type_code for _, _, type_code, _ in expected} == {"11", "40", "70"}  # no donors
    assert sorted(actual) == sorted(expected)
    for key, values in expected.items():
        assert actual[key] == {
            column: pytest.approx(value, abs=0.01 if column != "leverage_ratio" else 1e-4)
            for column, value in values.items()
        }, key
    partner_of = {a.identifier: a.reporting_org_ref for a in activities}
    code_of = {p["iati_org_ref"]: p["partner_code"] for p in _seed("ref_partners")}
    by_partner: dict[str, float] = defaultdict(float)
    for (activity_id, *_), values in expected.items():
        by_partner[code_of[partner_of[activity_id]]] += values["funds_leveraged"]
    assert per_partner == pytest.approx(dict(by_partner), abs=0.05)
