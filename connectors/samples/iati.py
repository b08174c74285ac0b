"""IATI 2.03 activity files of the sample world: each partner's programmes, one per city.

Each activity has commitments, disbursements, the donor's grant and, for about half of them,
co-financing from city governments, development banks and private investors (incoming
commitments, funds and pledges with their provider-org), and sex-disaggregated people/women
reached (0.5-5 % of a city's population a year, whatever the number of partners there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from connectors.reference import City, load_sector_themes
from connectors.samples.common import cities_by_country, seeded
from connectors.samples.partners import PARTNERS, THEMES, Partner

RESULT_YEARS = (2023, 2024)
#: Share of a city's population all partners together reach in a year (the brief's 0.5-5 %).
REACH_SHARE = (0.005, 0.05)
#: Commitment per activity in USD: at least this, at most this (and ~2 USD per resident).
COMMITMENT_USD = (500_000, 20_000_000)

#: IATI OrganisationType codes of the co-financiers an activity may attract besides its donor.
LOCAL_GOVERNMENT, MULTILATERAL, PRIVATE_SECTOR = "11", "40", "70"
#: Regional development banks (IATI ref, name) by the ISO3 codes they lend in; AfDB elsewhere.
DEVELOPMENT_BANKS = (
    (("BGD", "IND", "KHM", "PHL"), "46004", "Asian Development Bank"),
    (("HND", "PER"), "XI-IATI-IADB", "Inter-American Development Bank"),
    ((), "46002", "African Development Bank"),
)
PRIVATE_INVESTORS = (
    ("GB-COH-11223344", "Inclusive Cities Impact Fund"),
    ("NL-KVK-87654321", "Shelter Finance Partners"),
)
#: Share of activities with co-financing, and a co-financier's commitment as a share of the
#: partner's own (development banks lend more than city budgets or investors can).
CO_FINANCED_SHARE = 0.5
CO_FINANCING_SHARES = {
    LOCAL_GOVERNMENT: (0.05, 0.3),
    MULTILATERAL: (0.3, 1.2),
    PRIVATE_SECTOR: (0.05, 0.4),
}


@dataclass(frozen=True, slots=True)
class IncomingTransaction:
    """Money coming into an activity: IATI transaction type 1 incoming funds, 11 incoming
    commitment or 13 incoming pledge, with its provider-org (ref, type, name)."""

    type_code: str
    date: str
    value: int
    provider: tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Activity:
    """One partner's programme in one city, with the figures every file about it shares."""

    partner: Partner
    city: City
    theme: str
    identifier: str
    sectors: tuple[tuple[str, int], ...]  # (DAC code, percentage)
    start: str
    end: str
    last_updated: str
    commitment: int
    disbursements: tuple[tuple[str, int], ...]  # (date, USD)
    reached: dict[int, tuple[int, int]]  # year -> (female, male)
    incoming: tuple[IncomingTransaction, ...] = ()  # the donor's grant, then any co-financing


def _incoming(
    partner: Partner, city: City, commitment: int, start: str, seed: int
) -> tuple[IncomingTransaction, ...]:
    """The donor's grant (the partner's own funding, not leveraged) and, for about half of the
    activities, co-financing from the city government, a development bank or private investors:
    incoming commitments, two tranches of incoming funds (together sometimes above the
    commitment) and, from banks, pledges of more."""
    donor = IncomingTransaction("1", start, commitment, partner.funder)
    rng = seeded(seed, "co-financing", partner.slug, city.code)
    if rng.random() >= CO_FINANCED_SHARE:
        return (donor,)
    _, bank_ref, bank_name = next(
        b for b in DEVELOPMENT_BANKS if city.country_iso3 in b[0] or not b[0]
    )
    investor_ref, investor_name = rng.choice(PRIVATE_INVESTORS)
    candidates = (
        (f"{city.country_iso2}-LG-{city.code}", LOCAL_GOVERNMENT, f"{city.name} City Government"),
        (bank_ref, MULTILATERAL, bank_name),
        (investor_ref, PRIVATE_SECTOR, investor_name),
    )
    incoming = [donor]
    for provider in rng.sample(candidates, k=rng.randint(1, len(candidates))):
        low, high = CO_FINANCING_SHARES[provider[1]]
        committed = int(round(commitment * rng.uniform(low, high), -3))
        if provider[1] != PRIVATE_SECTOR:  # investors pay in without committing first
            date = f"2023-{rng.randint(1, 6):02d}-15"
            incoming.append(IncomingTransaction("11", date, committed, provider))
        for year, (first, last) in ((2023, (7, 12)), (2024, (1, 9))):
            tranche = int(round(committed * rng.uniform(0.3, 0.6), -3))
            date = f"{year}-{rng.randint(first, last):02d}-01"
            incoming.append(IncomingTransaction("1", date, tranche, provider))
        if provider[1] == MULTILATERAL and rng.random() < 0.5:
            pledge = int(round(committed * rng.uniform(0.2, 0.5), -3))
            date = f"2024-{rng.randint(6, 11):02d}-30"
            incoming.append(IncomingTransaction("13", date, pledge, provider))
    return tuple(incoming)


def plan_activities(cities: Sequence[City], seed: int) -> list[Activity]:
    """One activity per partner and city of its countries; reach is split between the partners
    working in a city so that together they reach 0.5-5 % of its people a year."""
    sector_themes = load_sector_themes()
    by_country = cities_by_country(cities)
    per_city: dict[str, int] = {}
    for partner in PARTNERS:
        for iso3 in partner.countries:
            for city in by_country[iso3]:
                per_city[city.code] = per_city.get(city.code, 0) + 1
    activities = []
    for number, partner in enumerate(PARTNERS):
        mine = [c for iso3 in partner.countries for c in by_country[iso3]]
        for index, city in enumerate(sorted(mine, key=lambda c: c.code)):
            rng = seeded(seed, "activity", partner.slug, city.code)
            theme = partner.themes[index % len(partner.themes)]
            options = sector_themes[theme]
            chosen = rng.sample(options, k=min(2, len(options)))
            main = rng.choice((60, 70, 80, 100)) if len(chosen) > 1 else 100
            sectors = ((chosen[0][0], main),) + (
                ((chosen[1][0], 100 - main),) if main < 100 else ()
            )
            low, high = COMMITMENT_USD
            cap = min(high, max(2 * low, 2 * city.population))
            commitment = round(rng.uniform(low, cap), -3)
            paid_share = rng.uniform(0.45, 0.9)
            weights = [rng.uniform(1, 3) for _ in range(3)]
            paid = [int(commitment * paid_share * w / sum(weights)) for w in weights]
            dates = ("2023-03-15", "2023-10-02", "2024-05-20")
            low_share, high_share = (bound / per_city[city.code] for bound in REACH_SHARE)
            share = rng.uniform(low_share * 1.02, high_share * 0.98)  # margin for rounding
            reached = {}
            for year in RESULT_YEARS:
                people = city.population * min(high_share * 0.98, share)
                female = round(people * rng.uniform(0.5, 0.58))
                reached[year] = (female, round(people) - female)
                share *= rng.uniform(1.05, 1.3)
            start = f"2022-{rng.randint(7, 12):02d}-01"
            activities.append(
                Activity(
                    partner=partner,
                    city=city,
                    theme=theme,
                    identifier=f"{partner.ref}-{city.code}-{index + 1:02d}",
                    sectors=sectors,
                    start=start,
                    end=f"{rng.choice((2025, 2026, 2027))}-12-31",
                    last_updated=(
                        f"2025-01-{10 + number:02d}T{rng.randint(8, 17):02d}:"
                        f"{rng.randint(0, 59):02d}:00Z"
                    ),
                    commitment=int(commitment),
                    disbursements=tuple(zip(dates, paid, strict=True)),
                    reached=reached,
                    incoming=_incoming(partner, city, int(commitment), start, seed),
                )
            )
    return activities


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attributes.items()})
    if text is not None:
        ET.SubElement(element, "narrative").text = text
    return element


def _measure(parent: ET.Element, kind: str, value: int, city: str, sex: str | None) -> None:
    element = _sub(parent, kind, value=str(value))
    _sub(element, "location", ref=city)
    if sex:
        _sub(element, "dimension", name="sex", value=sex)


def _activity_xml(root: ET.Element, activity: Activity) -> None:
    partner, city = activity.partner, activity.city
    title, description, _ = THEMES[activity.theme]
    element = _sub(
        root,
        "iati-activity",
        last_updated_datetime=activity.last_updated,
        default_currency="USD",
        humanitarian="1" if partner.humanitarian else "0",
        hierarchy="1",
    )
    element.set("xml:lang", "en")
    ET.SubElement(element, "iati-identifier").text = activity.identifier
    _sub(element, "reporting-org", partner.name, ref=partner.ref, type=partner.org_type)
    _sub(element, "title", f"{title}, {city.name}")
    _sub(element, "description", description, type="1")
    funder_ref, funder_type, funder_name = partner.funder
    _sub(element, "participating-org", funder_name, ref=funder_ref, type=funder_type, role="1")
    _sub(
        element, "participating-org", partner.name, ref=partner.ref, type=partner.org_type, role="4"
    )
    _sub(element, "activity-status", code="2")
    for date_type, date in (("1", activity.start), ("2", activity.start), ("3", activity.end)):
        _sub(element, "activity-date", type=date_type, iso_date=date)
    _sub(element, "recipient-country", code=city.country_iso2, percentage="100")
    location = _sub(element, "location", ref=city.code)
    _sub(location, "name", city.name)
    point = _sub(location, "point", srsName="http://www.opengis.net/def/crs/EPSG/0/4326")
    ET.SubElement(point, "pos").text = f"{city.latitude:.4f} {city.longitude:.4f}"
    for code, percentage in activity.sectors:
        _sub(element, "sector", vocabulary="1", code=code, percentage=str(percentage))
    transactions = [
        ("2", activity.start, activity.commitment),
        *(("3", date, value) for date, value in activity.disbursements),
    ]
    for type_code, date, value in transactions:
        transaction = _sub(element, "transaction")
        _sub(transaction, "transaction-type", code=type_code)
        _sub(transaction, "transaction-date", iso_date=date)
        ET.SubElement(transaction, "value", {"value-date": date}).text = str(value)
    for incoming in activity.incoming:
        transaction = _sub(element, "transaction")
        _sub(transaction, "transaction-type", code=incoming.type_code)
        _sub(transaction, "transaction-date", iso_date=incoming.date)
        value = ET.SubElement(transaction, "value", {"value-date": incoming.date})
        value.text = str(incoming.value)
        provider_ref, provider_type, provider_name = incoming.provider
        _sub(transaction, "provider-org", provider_name, ref=provider_ref, type=provider_type)
        _sub(transaction, "receiver-org", partner.name, ref=partner.ref, type=partner.org_type)
    result = _sub(element, "result", type="1", aggregation_status="1")
    _sub(result, "title", "People reached")
    indicators = [("Number of people reached", False)]
    if activity.theme == "women_gender_equality":
        indicators.append(("Number of women reached", True))
    for indicator_title, women_only in indicators:
        indicator = _sub(result, "indicator", measure="1", ascending="1")
        _sub(indicator, "title", indicator_title)
        for year in RESULT_YEARS:
            female, male = activity.reached[year]
            period = _sub(indicator, "period")
            _sub(period, "period-start", iso_date=f"{year}-01-01")
            _sub(period, "period-end", iso_date=f"{year}-12-31")
            target = female if women_only else female + male
            _measure(
                period,
                "target",
                int(round(target * 1.1, -1)),
                city.code,
                "female" if women_only else None,
            )
            _measure(period, "actual", female, city.code, "female")
            if not women_only:
                _measure(period, "actual", male, city.code, "male")


def render_iati(activities: Sequence[Activity]) -> dict[str, str]:
    """One IATI 2.03 activity file per partner."""
    files = {}
    for partner in PARTNERS:
        root = ET.Element(
            "iati-activities", {"version": "2.03", "generated-datetime": "2025-01-20T06:00:00Z"}
        )
        for activity in activities:
            if activity.partner is partner:
                _activity_xml(root, activity)
        ET.indent(root, space=" ")
        body = ET.tostring(root, encoding="unicode")
        files[f"iati/{partner.slug}.xml"] = f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
    return files
