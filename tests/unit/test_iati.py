"""IATI 2.03 parser and source: activities, transactions, sex-disaggregated results, dead letters,
refused files and the last-updated-datetime cursor, all from recorded fixture files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from connectors.errors import SourceFormatError
from connectors.events import make_event
from connectors.sdk import Checkpoint, Record, Refused, run_source
from connectors.sdk.state import StateStore
from connectors.sources import iati
from connectors.sources.iati.helpers import IatiFile, parse_iati_activities

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "iati"
CONTRACTS = REPO / "connectors" / "contracts"
PROGRAMMES = FIXTURES / "urban_programmes.xml"
ONE_INVALID = FIXTURES / "one_invalid_activity.xml"
NAIROBI = "GB-CHC-1180001-NBO-WASH-01"
KAMPALA = "GB-CHC-1180001-KLA-MKT-02"
DHAKA = "GB-CHC-1180001-DAC-HSG-03"


def _parse(path: Path) -> IatiFile:
    return parse_iati_activities(path.read_bytes(), path.name)


def _activity(identifier: str, path: Path = PROGRAMMES):
    return next(a for a in _parse(path).activities if a.identifier == identifier)


def _read(inputs: list[Path], state: dict | None = None) -> list[Any]:
    config = iati.IatiConfig(inputs=[str(p) for p in inputs])
    return list(iati.SOURCE.read(config, state or {}))


def _records(items: list[Any], stream: str) -> list[Record]:
    return [i for i in items if isinstance(i, Record) and i.stream.name == stream]


def _variant(tmp_path: Path, old: str, new: str, source: Path = PROGRAMMES) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / source.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


class FakeProducer:
    """Keeps (topic, key, value) per sent item; everything queued is confirmed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any, dict]] = []

    def send_event(self, topic: str, event: dict, *, key: str) -> None:
        self.sent.append((topic, key, event, {}))

    def send_raw(self, topic: str, value: bytes, *, key: str, headers: list) -> None:
        self.sent.append((topic, key, value, dict(headers)))

    def confirm(self) -> int:
        return len(self.sent)


# ------------------------------------------------------------------------------ parsing


def test_fixture_parses_into_3_activities_10_transactions_and_15_result_measurements():
    parsed = _parse(PROGRAMMES)
    assert parsed.version == "2.03" and parsed.rejected == []
    assert [a.identifier for a in parsed.activities] == [NAIROBI, KAMPALA, DHAKA]
    assert [len(a.transactions) for a in parsed.activities] == [5, 2, 3]
    assert [len(a.results) for a in parsed.activities] == [6, 4, 5]


def test_commitment_keeps_its_value_currency_and_receiver():
    commitment = next(t for t in _activity(NAIROBI).transactions if t["type_code"] == "2")
    assert commitment["type"] == "Outgoing Commitment"
    assert (commitment["value"], commitment["currency"]) == (2_500_000.0, "USD")
    assert commitment["date"] == "2023-01-15"
    assert commitment["receiver_org"] == {
        "ref": "KE-RCO-CPR-4562",
        "type": "24",
        "name": "Mathare Women's Kiosk Cooperative",
        "activity_id": "KE-RCO-CPR-4562-MWK",
    }
    assert "provider_org" not in commitment


def test_incoming_funds_keep_their_provider_org_for_funds_leveraged():
    incoming = next(t for t in _activity(NAIROBI).transactions if t["type_code"] == "1")
    assert incoming["type"] == "Incoming Funds"
    assert incoming["provider_org"] == {
        "ref": "GB-GOV-1",
        "type": "10",
        "name": "Foreign, Commonwealth and Development Office",
        "activity_id": "GB-GOV-1-300998",
    }


def test_disbursements_carry_their_dates_and_decimal_values():
    disbursements = [t for t in _activity(NAIROBI).transactions if t["type_code"] == "3"]
    assert [(t["date"], t["value"], t["transaction_index"]) for t in disbursements] == [
        ("2023-03-01", 800_000.0, 3),
        ("2023-09-01", 650_000.5, 4),
    ]


def test_transaction_currency_falls_back_to_the_activity_default_and_own_currency_wins():
    kampala = _activity(KAMPALA).transactions
    assert {t["currency"] for t in kampala} == {"EUR"}
    expenditure = next(t for t in _activity(NAIROBI).transactions if t["type_code"] == "4")
    assert (expenditure["value"], expenditure["currency"]) == (71_500_000.0, "KES")


def test_female_and_male_actuals_of_a_result_are_separate_measurements_with_sex():
    actuals = {
        r["sex"]: r["value"]
        for r in _activity(NAIROBI).results
        if r["measurement"] == "actual" and r["period_start"] == "2023-01-01"
    }
    assert actuals == {"female": 10_450.0, "male": 9_870.0}
    dhaka = [
        (r["period_end"], r["sex"], r["value"])
        for r in _activity(DHAKA).results
        if r["measurement"] == "actual"
    ]
    assert dhaka == [
        ("2023-06-30", "female", 140.0),
        ("2023-06-30", "male", 95.0),
        ("2023-12-31", "female", 310.0),
        ("2023-12-31", "male", 205.0),
    ]


def test_baselines_and_undisaggregated_targets_are_kept():
    nairobi = [r for r in _activity(NAIROBI).results if r["measurement"] == "baseline"]
    assert [(r["baseline_year"], r["period_start"], r["sex"], r["value"]) for r in nairobi] == [
        (2022, "2022-12-31", "female", 0.0),
        (2022, "2022-12-31", "male", 0.0),
    ]
    target = next(r for r in _activity(DHAKA).results if r["measurement"] == "target")
    assert (target["value"], target["sex"], target["dimensions"]) == (600.0, None, {})


def test_qualitative_indicator_has_no_value_but_keeps_its_comment():
    qualitative = next(r for r in _activity(KAMPALA).results if r["indicator_measure_code"] == "5")
    assert qualitative["indicator_measure"] == "Qualitative"
    assert (qualitative["value"], qualitative["value_text"]) == (None, None)
    assert qualitative["comment"].startswith("Focus groups report vendors now stay open")


def test_percentage_indicator_reads_decimal_values():
    kampala = [r for r in _activity(KAMPALA).results if r["indicator_measure_code"] == "2"]
    assert [(r["measurement"], r["value"]) for r in kampala] == [
        ("baseline", 12.5),
        ("target", 40.0),
        ("actual", 35.2),
    ]


def test_city_code_comes_from_location_ref_or_location_id_with_coordinates():
    nairobi, kampala, dhaka = _parse(PROGRAMMES).activities
    assert (nairobi.city_code, kampala.city_code, dhaka.city_code) == ("KENBO", "UGKLA", "BDDAC")
    assert nairobi.data["locations"][0] == {
        "ref": "KENBO",
        "name": "Nairobi (Mathare and Kibera)",
        "lat": -1.2864,
        "lon": 36.8172,
        "city_code": "KENBO",
    }
    assert {t["city_code"] for t in dhaka.transactions} == {"BDDAC"}


def test_city_code_must_belong_to_a_recipient_country(tmp_path):
    path = _variant(
        tmp_path,
        '<recipient-country code="KE" percentage="100"/>',
        '<recipient-country code="TZ"/>',
    )
    assert _parse(path).activities[0].city_code is None


def test_activity_fields_dates_sectors_and_budgets():
    data = _activity(NAIROBI).data
    assert data["title"] == "Mathare and Kibera water kiosks and sanitation upgrade"
    assert (data["status_code"], data["status"]) == ("2", "Implementation")
    assert data["dates"] == {
        "planned_start": "2023-01-01",
        "actual_start": "2023-02-06",
        "planned_end": "2025-12-31",
        "actual_end": None,
    }
    assert [(s["code"], s["percentage"]) for s in data["sectors"]] == [
        ("14030", 60.0),
        ("14032", 40.0),
    ]
    assert [(b["period_start"], b["value"], b["currency"]) for b in data["budgets"]] == [
        ("2023-01-01", 1_400_000.0, "USD"),
        ("2024-01-01", 1_100_000.0, "USD"),
    ]
    assert [o["role"] for o in data["participating_orgs"]] == ["1", "3", "4"]


def test_last_updated_datetime_is_normalised_to_utc():
    assert [a.last_updated for a in _parse(PROGRAMMES).activities] == [
        "2024-03-28T14:05:00Z",
        "2024-03-30T09:00:00Z",  # no offset published: UTC
        "2024-02-14T05:20:00Z",  # +06:00 in the file
    ]


# ------------------------------------------------------------------------------ invalid input


def test_invalid_activity_is_rejected_with_its_reason_and_the_others_parse():
    parsed = _parse(ONE_INVALID)
    assert [a.identifier for a in parsed.activities] == [
        "GB-CHC-1180001-KIS-DRN-04",
        "GB-CHC-1180001-CGP-CLM-06",
    ]
    (rejected,) = parsed.rejected
    assert rejected.key == "GB-CHC-1180001-GUL-WTR-05"
    assert (rejected.line, rejected.error_class) == (46, "invalid_activity")
    assert rejected.reason == (
        "one_invalid_activity.xml:46: activity GB-CHC-1180001-GUL-WTR-05: "
        "transaction[1]/value: '1,250,000,000' is not a decimal number"
    )
    assert rejected.payload.startswith(b"<iati-activity ")
    assert rejected.payload.endswith(b"</iati-activity>")
    assert b"GB-CHC-1180001-GUL-WTR-05" in rejected.payload


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            f"<iati-identifier>{NAIROBI}</iati-identifier>",
            "<iati-identifier> </iati-identifier>",
            "activity without iati-identifier: iati-identifier: missing or empty",
        ),
        (
            '<transaction-date iso-date="2023-03-01"/>',
            '<transaction-date iso-date="2023-02-30"/>',
            "transaction[3]/transaction-date/@iso-date: '2023-02-30' is not a calendar date",
        ),
        (
            '<transaction-type code="4"/>',
            '<transaction-type code="D"/>',
            "transaction[5]/transaction-type/@code: 'D' is not a type code",
        ),
        (
            '<actual value="9870">',
            '<actual value="about 9900">',
            "result[1]/indicator[1]/period[1]/actual[2]/@value: 'about 9900' is not a decimal",
        ),
        (
            'last-updated-datetime="2024-03-28T14:05:00Z"',
            'last-updated-datetime="28/03/2024"',
            "@last-updated-datetime: '28/03/2024' is not a date-time",
        ),
        (  # a schema rule: two partners cannot report one activity
            '<reporting-org ref="GB-CHC-1180001" type="21" secondary-reporter="0">',
            '<reporting-org ref="XM-DAC-41120" type="40"/>\n'
            '  <reporting-org ref="GB-CHC-1180001" type="21" secondary-reporter="0">',
            "reporting-org: appears 2 times; IATI schema rule: at most one reporting-org",
        ),
    ],
)
def test_each_kind_of_invalid_content_rejects_only_its_activity(tmp_path, old, new, reason):
    parsed = _parse(_variant(tmp_path, old, new))
    assert [a.identifier for a in parsed.activities] == [KAMPALA, DHAKA]
    (rejected,) = parsed.rejected
    assert reason in rejected.reason
    assert rejected.reason.startswith("urban_programmes.xml:")


def test_malformed_xml_is_refused_naming_file_and_line():
    with pytest.raises(SourceFormatError) as info:
        _parse(FIXTURES / "malformed.xml")
    assert str(info.value) == "malformed.xml:11: malformed XML: mismatched tag (column 4)"
    assert info.value.line == 11


def test_doctype_is_refused_before_any_entity_is_read():
    with pytest.raises(SourceFormatError, match="DOCTYPE declarations are refused") as info:
        _parse(FIXTURES / "doctype_entities.xml")
    assert (info.value.origin, info.value.line) == ("doctype_entities.xml", 2)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"  \n", "empty.xml: file is empty"),
        (b'<iati-organisations version="2.03"/>', "expected <iati-activities>"),
        (b'<iati-activities version="1.05"/>', "IATI version 1.05 is not supported"),
    ],
)
def test_files_that_are_not_iati_2_activity_files_are_refused(payload, message):
    with pytest.raises(SourceFormatError, match=message):
        parse_iati_activities(payload, "empty.xml")


# ------------------------------------------------------------------------------ the source


def test_events_are_keyed_by_identifier_with_partner_urn_and_city_subject():
    items = _read([PROGRAMMES])
    assert [type(i).__name__ for i in items[-1:]] == ["Checkpoint"]
    activities = _records(items, "activities")
    assert [(r.key, r.subject) for r in activities] == [
        (NAIROBI, "KENBO"),
        (KAMPALA, "UGKLA"),
        (DHAKA, "BDDAC"),
    ]
    assert {r.source for r in items[:-1]} == {"urn:partner:gb-chc-1180001"}
    assert {r.time for r in _records(items, "results") if r.key == DHAKA} == {
        "2024-02-14T05:20:00Z"
    }
    assert (len(_records(items, "transactions")), len(_records(items, "results"))) == (10, 15)


def test_source_urn_lowercases_and_dashes_the_reporting_org_ref():
    assert iati.source_urn("XI-IATI-EC_INTPA") == "urn:partner:xi-iati-ec-intpa"
    assert iati.source_urn("GB-GOV-1") == "urn:partner:gb-gov-1"


def test_every_event_validates_against_its_contract():
    items = _read([PROGRAMMES, ONE_INVALID])
    validators = {
        stream.event_type: Draft202012Validator(
            json.loads((CONTRACTS / f"{stream.event_type}.json").read_text(encoding="utf-8")),
            format_checker=FormatChecker(),
        )
        for stream in iati.SOURCE.streams
    }
    records = [i for i in items if isinstance(i, Record)]
    assert len(records) == 5 + 12 + 16
    for record in records:
        assert list(validators[record.stream.event_type].iter_errors(record.data)) == []
        event = make_event(
            record.stream.event_type,
            record.source,
            record.data,
            event_id=record.event_id,
            subject=record.subject,
            time=record.time,
        )
        assert event["type"] == record.stream.event_type


def test_event_ids_are_stable_and_unique():
    first = [r.event_id for r in _read([PROGRAMMES]) if isinstance(r, Record)]
    again = [r.event_id for r in _read([PROGRAMMES]) if isinstance(r, Record)]
    assert first == again
    assert len(set(first)) == len(first) == 28


def test_invalid_activity_goes_to_the_dlq_with_reason_and_the_file_still_loads(tmp_path):
    producer = FakeProducer()
    config = iati.IatiConfig(inputs=[str(ONE_INVALID)])
    report = run_source(iati.SOURCE, config, producer, StateStore(tmp_path, "iati"))
    assert (report.sent, report.rejected) == (2 + 2 + 1, 1)
    dead = [s for s in producer.sent if s[0].endswith(".dlq")]
    ((topic, key, value, headers),) = dead
    assert (topic, key) == ("partner.iati.activity.v1.dlq", "GB-CHC-1180001-GUL-WTR-05")
    assert value.startswith(b"<iati-activity ")
    assert headers["uf.error.class"] == b"invalid_activity"
    assert (
        b"transaction[1]/value: '1,250,000,000' is not a decimal number"
        in (headers["uf.error.reason"])
    )
    assert headers["uf.contract"] == b"org.urbanflow.iati.activity.v1"


def test_second_run_sends_nothing_and_does_not_dead_letter_again(tmp_path):
    store = StateStore(tmp_path, "iati")
    config = iati.IatiConfig(inputs=[str(PROGRAMMES), str(ONE_INVALID)])
    first = run_source(iati.SOURCE, config, FakeProducer(), store)
    second = run_source(iati.SOURCE, config, FakeProducer(), store)
    assert (first.sent, first.rejected, first.checkpoints) == (28 + 5, 1, 2)
    assert (second.sent, second.rejected) == (0, 0)
    assert store.load()["last_updated"][NAIROBI] == "2024-03-28T14:05:00Z"


def test_unchanged_last_updated_datetime_skips_the_activity_with_its_children(tmp_path):
    state = next(i for i in _read([PROGRAMMES]) if isinstance(i, Checkpoint)).state
    # Same last-updated-datetime, different content: the publisher says nothing changed.
    same = _variant(tmp_path, ">800000<", ">800001<")
    assert [type(i).__name__ for i in _read([same], state)] == ["Checkpoint"]


def test_newer_last_updated_datetime_resends_that_activity_only(tmp_path):
    state = next(i for i in _read([PROGRAMMES]) if isinstance(i, Checkpoint)).state
    before = {r.event_id: r for r in _read([PROGRAMMES]) if isinstance(r, Record)}
    newer = _variant(
        tmp_path,
        'last-updated-datetime="2024-03-28T14:05:00Z"',
        'last-updated-datetime="2024-04-15T10:00:00Z"',
    )
    items = _read([newer], state)
    records = [i for i in items if isinstance(i, Record)]
    assert {r.key for r in records} == {NAIROBI}
    assert [len(_records(items, s)) for s in ("activities", "transactions", "results")] == [1, 5, 6]
    # the activity version is new; its unchanged transactions and results keep their ids
    assert [r.event_id in before for r in records] == [False] + [True] * 11
    assert items[-1].state["last_updated"][NAIROBI] == "2024-04-15T10:00:00Z"


def test_older_last_updated_datetime_is_not_sent(tmp_path):
    state = {"last_updated": {NAIROBI: "2024-06-01T00:00:00Z"}}
    items = _read([PROGRAMMES], state)
    assert NAIROBI not in {r.key for r in items if isinstance(r, Record)}
    assert items[-1].state["last_updated"][NAIROBI] == "2024-06-01T00:00:00Z"


def test_dead_letter_of_an_activity_without_identifier_is_keyed_by_file_and_line(tmp_path):
    path = _variant(tmp_path, f"<iati-identifier>{NAIROBI}</iati-identifier>", "")
    (dead,) = [i for i in _read([path]) if isinstance(i, Refused)]
    assert dead.key == f"{path}:5"
    assert "iati-identifier: missing or empty" in dead.reason


def test_a_folder_contributes_its_xml_files_and_a_bad_one_refuses_the_run(tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "a.xml").write_bytes(PROGRAMMES.read_bytes())
    (folder / "notes.txt").write_text("not IATI")
    assert len(_records(_read([folder]), "activities")) == 3
    (folder / "b.xml").write_bytes((FIXTURES / "malformed.xml").read_bytes())
    with pytest.raises(SourceFormatError, match=r"b\.xml:11"):
        _read([folder])


def test_check_names_missing_inputs():
    assert iati.SOURCE.check(iati.IatiConfig(inputs=[])) == [
        "no inputs: give files, folders or URLs"
    ]
    assert iati.SOURCE.check(iati.IatiConfig(inputs=["/nope/x.xml", str(PROGRAMMES)])) == [
        "/nope/x.xml: no such file or directory"
    ]
