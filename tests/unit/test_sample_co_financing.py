"""The sample world's co-financing and the partner reference seed that classifies it."""

from __future__ import annotations

import csv
from collections import defaultdict

from connectors.samples import iati as world_iati
from connectors.samples.partners import PARTNERS
from connectors.settings import Settings
from connectors.sources.iati.helpers import parse_iati_activities

SETTINGS = Settings.from_env()
PARTNERS_CSV = SETTINGS.reference_dir / "ref_partners.csv"
CO_FINANCIER_TYPES = {
    world_iati.LOCAL_GOVERNMENT,
    world_iati.MULTILATERAL,
    world_iati.PRIVATE_SECTOR,
}


def _activities() -> list:
    files = sorted((SETTINGS.sample_data_dir / "iati").glob("*.xml"))
    return [a for p in files for a in parse_iati_activities(p.read_bytes(), str(p)).activities]


def test_ref_partners_seed_lists_the_sample_world_partners_with_their_core_funders() -> None:
    with PARTNERS_CSV.open(encoding="utf-8", newline="") as handle:
        seed = {row["partner_code"]: row for row in csv.DictReader(handle)}

    assert sorted(seed) == sorted(p.slug for p in PARTNERS)
    for partner in PARTNERS:
        row = seed[partner.slug]
        assert (row["iati_org_ref"], row["partner_name"]) == (partner.ref, partner.name)
        assert row["iati_org_type_code"] == partner.org_type
        assert row["themes"].split("|") == list(partner.themes)
        assert (row["core_funder_ref"], row["core_funder_name"]) == (
            partner.funder[0],
            partner.funder[2],
        )
        assert row["is_active"] == "true"


def test_every_activity_gets_its_donor_grant_and_about_half_get_co_financing() -> None:
    funders = {p.ref: p.funder for p in PARTNERS}
    co_financed = 0
    for activity in _activities():
        incoming = [t for t in activity.transactions if t["type_code"] in {"1", "11", "13"}]
        donor = funders[activity.reporting_org_ref]
        grants = [t for t in incoming if t["provider_org"]["ref"] == donor[0]]
        commitment = next(t["value"] for t in activity.transactions if t["type_code"] == "2")
        others = [t for t in incoming if t["provider_org"]["ref"] != donor[0]]

        assert [(t["type_code"], t["value"]) for t in grants] == [("1", commitment)]
        assert {t["provider_org"]["type"] for t in others} <= CO_FINANCIER_TYPES
        assert all(t["receiver_org"]["ref"] == activity.reporting_org_ref for t in incoming)
        co_financed += bool(others)
    assert 0.3 <= co_financed / len(_activities()) <= 0.7


def test_co_financiers_commit_before_paying_and_private_investors_pay_without_committing() -> None:
    flows: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for activity in _activities():
        for t in activity.transactions:
            provider = t.get("provider_org") or {}
            if provider.get("type") in CO_FINANCIER_TYPES:
                key = (activity.identifier, provider["type"])
                flows[key].append((t["date"], t["type_code"]))

    assert {provider_type for _, provider_type in flows} == CO_FINANCIER_TYPES
    for (_, provider_type), dated in flows.items():
        codes = [code for _, code in sorted(dated)]
        assert codes.count("1") == 2
        if provider_type == world_iati.PRIVATE_SECTOR:
            assert "11" not in codes
        else:
            assert codes[0] == "11"
    assert any("13" in [code for _, code in dated] for dated in flows.values())
