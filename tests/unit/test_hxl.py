"""HXL source: hashtag row, disaggregation attributes, places, refused files, bad rows, state."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

import orjson
import pytest
from local_http import serve

from connectors.contracts import get_contract
from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, Refused, load_config
from connectors.sources import hxl
from connectors.sources.hxl import helpers
from connectors.sources.hxl.helpers import column_letter, parse_columns, parse_date

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hxl"
DTM_CSV = FIXTURES / "dtm_som_idp_sites_2024-03.csv"
DTM_XLSX = FIXTURES / "dtm_eth_site_assessment_r35.xlsx"
BAD_NUMBER = FIXTURES / "dtm_eth_bad_number.csv"
LATIN1_CSV = FIXTURES / "dtm_hnd_returnees_latin1.csv"  # reported: refused as "not UTF-8"
WRONG_DIMENSION_XLSX = FIXTURES / "dtm_eth_wrong_dimension.xlsx"  # <dimension ref="A1:K">
DATES_CSV = FIXTURES / "dtm_nga_idps_dates.csv"  # reported: "1 March 2015" dead-lettered


def _read(inputs: list, state: dict | None = None, **settings) -> list:
    overrides = {"partner": "iom-dtm", "inputs": [str(i) for i in inputs], **settings}
    config = load_config("hxl", hxl.HxlConfig, overrides=overrides)
    return list(hxl.SOURCE.read(config, state or {}))


def _records(out: list) -> list[Record]:
    return [i for i in out if isinstance(i, Record)]


def _cell(records: list[Record], row: int, column: int) -> dict:
    return next(r.data for r in records if r.data["row"] == row and r.data["column"] == column)


def test_dtm_csv_yields_one_record_per_filled_people_count_cell():
    records = _records(_read([DTM_CSV]))

    # 6 data rows x 7 count columns, less the two empty migrant cells (Dayniile, Baidoa)
    assert len(records) == 40
    assert sorted({r.data["row"] for r in records}) == [3, 4, 5, 6, 7, 8]
    assert {r.source for r in records} == {"urn:partner:iom-dtm"}
    assert {r.stream.topic for r in records} == {"partner.hxl.record.v1"}


def test_attributes_map_to_sex_age_group_and_population_group():
    records = _records(_read([DTM_CSV]))

    girls = _cell(records, 3, 14)  # #affected+idps+f+children
    men = _cell(records, 3, 12)  # #affected+idps+m
    returnees = _cell(records, 3, 15)  # #affected+returnees
    assert (girls["attributes"], girls["sex"], girls["age_group"]) == (
        ["+children", "+f", "+idps"],
        "female",
        "children",
    )
    assert (girls["population_group"], girls["value"], girls["header"]) == (
        "idps",
        14890,
        "IDP girls (0-17)",
    )
    assert (men["sex"], men["age_group"], men["value"]) == ("male", "all", 22680)
    assert (returnees["sex"], returnees["population_group"], returnees["value"]) == (
        "total",
        "returnees",
        1250,
    )


def test_location_columns_resolve_a_spaced_un_locode_to_a_city_code_from_the_seed():
    records = _records(_read([DTM_CSV]))

    hodan = _cell(records, 3, 10)
    baidoa = _cell(records, 7, 10)  # no LOCODE
    bossaso = _cell(records, 8, 10)  # SO BSA: not one of our cities
    assert {k: hodan[k] for k in ("country_code", "admin1_code", "admin2", "city_code")} == {
        "country_code": "SOM",
        "admin1_code": "SO22",
        "admin2": "Hodan",
        "city_code": "SOMGQ",
    }
    assert hodan["date"] == "2024-03-31"
    assert "city_code" not in baidoa and baidoa["country_code"] == "SOM"
    assert "city_code" not in bossaso and bossaso["location_code"] == "SO BSA"
    assert {r.subject for r in records if r.data["row"] == 3} == {"SOMGQ"}


def test_thousands_separator_in_a_quoted_csv_cell_is_read_as_a_number():
    assert _cell(_records(_read([DTM_CSV])), 4, 10)["value"] == 102340


def test_xlsx_hashtag_row_below_a_title_is_found_and_excel_dates_are_read():
    records = _records(_read([DTM_XLSX]))

    assert len(records) == 23  # 5 rows x 5 counts, less 2 empty host population cells
    mekelle_elderly = _cell(records, 5, 10)
    assert {k: mekelle_elderly[k] for k in ("age_group", "value", "date", "city_code")} == {
        "age_group": "elderly",
        "value": 6210,
        "date": "2024-02-29",
        "city_code": "ETMQX",
    }
    assert mekelle_elderly["country_code"] == "ETH"  # from the city, no #country column
    assert "country_code" not in _cell(records, 6, 7)  # Adwa: no LOCODE, no country
    host = _cell(records, 7, 11)
    assert (host["hashtag"], host["attributes"], host["population_group"]) == (
        "#population",
        [],
        "all",
    )


def _with_sheet(workbook: bytes, edit) -> bytes:
    """The workbook with its first sheet's XML passed through `edit`."""
    source, out = zipfile.ZipFile(io.BytesIO(workbook)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = edit(data)
            target.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "declared", ["A1:B2", "C4:D5", "A1:XFD1048576", "A1:K", "A0", "bogus", "A1:XFE1048577", ""]
)
def test_xlsx_with_wrong_declared_dimensions_is_read_whole(tmp_path, declared):
    path = tmp_path / DTM_XLSX.name
    path.write_bytes(
        _with_sheet(
            DTM_XLSX.read_bytes(),
            lambda xml: re.sub(
                rb'<dimension ref="[^"]*"', f'<dimension ref="{declared}"'.encode(), xml
            ),
        )
    )

    expected = [r.data for r in _records(_read([DTM_XLSX]))]
    assert [r.data for r in _records(_read([path]))] == expected and len(expected) == 23


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (lambda xlsx: xlsx[: len(xlsx) // 2], "not a readable XLSX workbook"),
        (
            lambda xlsx: _with_sheet(xlsx, lambda xml: xml[:-40]),
            r"not a readable XLSX workbook: .*\(sheet1\.xml, line 1\)",
        ),
    ],
    ids=["truncated file", "broken sheet XML"],
)
def test_broken_xlsx_is_refused_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(content(DTM_XLSX.read_bytes()))

    with pytest.raises(SourceFormatError, match=problem) as raised:
        _read([path])

    assert raised.value.origin == str(path)


def test_every_record_satisfies_the_hxl_contract_and_those_without_warnings_v1_too():
    v1, v2 = get_contract("org.urbanflow.hxl.record.v1"), get_contract(hxl.EVENT_TYPE)
    records = _records(_read([DTM_CSV, DTM_XLSX, LATIN1_CSV, DATES_CSV, WRONG_DIMENSION_XLSX]))

    assert hxl.EVENT_TYPE == "org.urbanflow.hxl.record.v2"
    assert sum("warnings" in r.data for r in records) == 2
    for record in records:
        v2.validate_data(record.data)
        if "warnings" not in record.data:
            v1.validate_data(record.data)


def test_untagged_file_is_refused_naming_the_file():
    path = FIXTURES / "untagged_displacement.csv"

    with pytest.raises(SourceFormatError) as raised:
        _read([path])

    assert str(raised.value) == f"{path}: no HXL hashtag row in the first 25 rows"


def test_malformed_hashtag_is_refused_naming_file_row_and_column():
    path = FIXTURES / "malformed_hashtag.csv"

    with pytest.raises(SourceFormatError) as raised:
        _read([DTM_CSV, path])

    assert str(raised.value) == (
        f"{path}:2: malformed HXL hashtag '#affected+' in column E of the hashtag row"
    )


def test_hashtag_with_a_space_after_the_hash_is_malformed():
    with pytest.raises(SourceFormatError) as raised:
        parse_columns(["#adm1+name", "# bad", "#affected"], [], "f.csv", 4)

    assert (
        str(raised.value) == "f.csv:4: malformed HXL hashtag '# bad' in column B of the hashtag row"
    )


def test_conflicting_sex_attributes_on_one_count_column_are_refused():
    with pytest.raises(SourceFormatError, match=r"f.csv:1: column C .* conflicting sex \+f \+m"):
        parse_columns(["#adm1+name", "#affected", "#affected+f+m"], [], "f.csv", 1)


def test_hashtag_attributes_are_case_insensitive_and_sorted():
    (column,) = parse_columns(["#Affected +IDPs +F"], [], "f.csv", 1)

    assert (column.spec, column_letter(27)) == ("#affected+f+idps", "AB")


def test_file_without_a_people_count_column_is_refused_listing_the_tags_it_has(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("#adm1+name,#loc+name,#date\nBanadir,Hodan,2024-03-31\n")

    with pytest.raises(SourceFormatError, match=r"sites.csv:1: no people-count column .*"):
        _read([path])


def test_row_with_a_country_name_in_the_iso3_column_goes_to_the_dlq(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("#country+code,#affected+idps\nSOM,48210\nSomalia,9870\n")

    out = _read([path])

    assert [i.reason for i in out if isinstance(i, Refused)] == [
        f"{path}:3: column A (#country+code): 'SOMALIA' is not an ISO 3166 alpha-3 code"
    ]
    assert [r.data["value"] for r in _records(out)] == [48210]


def test_bad_number_row_goes_to_the_dlq_with_file_line_and_column_and_the_rest_loads():
    out = _read([BAD_NUMBER])

    rejects = [i for i in out if isinstance(i, Refused)]
    assert [r.reason for r in rejects] == [
        f"{BAD_NUMBER}:4: column H (#affected+f+idps): '11,38O' is not a count of people"
    ]
    assert orjson.loads(rejects[0].payload)["cells"][:2] == ["Dire Dawa", "ET15"]
    assert rejects[0].stream.topic == "partner.hxl.record.v1"
    assert sorted({r.data["row"] for r in _records(out)}) == [3, 5]
    assert len(_records(out)) == 6


def test_unchanged_file_is_skipped_on_the_next_run_and_a_changed_one_is_sent_whole(tmp_path):
    copy = tmp_path / "dtm.csv"
    shutil.copy(DTM_CSV, copy)
    first = _read([copy])
    state = first[-1].state

    unchanged = _read([copy], state)
    copy.write_text(DTM_CSV.read_text().replace("48210", "48310"))
    changed = _records(_read([copy], state))

    assert isinstance(first[-1], Checkpoint) and list(state["files"]) == [str(copy)]
    assert unchanged == []
    assert len(changed) == 40
    first_ids = {r.event_id for r in _records(first)}
    # only row 3's content changed: its 7 counts get new ids, the other 33 keep theirs
    assert len({r.event_id for r in changed} - first_ids) == 7


def test_event_ids_are_stable_across_runs_and_distinct_per_cell():
    ids = [r.event_id for r in _records(_read([DTM_CSV]))]

    assert ids == [r.event_id for r in _records(_read([DTM_CSV]))]
    assert len(set(ids)) == 40


def test_configured_dataset_name_replaces_the_file_name():
    records = _records(_read([DTM_CSV], dataset="som-dtm-r12"))

    assert {r.data["dataset"] for r in records} == {"som-dtm-r12"}
    assert {r.key for r in records} == {"som-dtm-r12"}


def test_partner_slug_is_required():
    with pytest.raises(ConfigError, match="partner"):
        load_config("hxl", hxl.HxlConfig, overrides={"inputs": [str(DTM_CSV)]})


def test_hxl_csv_url_is_fetched_over_http():
    def route(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        return 200, "text/csv", DTM_CSV.read_bytes()

    with serve(route) as (base, requests):
        records = _records(_read([f"{base}/dtm/som_sites.csv?round=12"]))

    assert requests == ["/dtm/som_sites.csv?round=12"]
    assert len(records) == 40
    assert {r.data["dataset"] for r in records} == {"som_sites.csv"}


# ------------------------------------------------------------ the three reported problems


def test_latin1_csv_loads_with_its_accented_names_and_counts():
    assert b"Moraz\xe1n" in LATIN1_CSV.read_bytes()  # Latin-1 bytes, not UTF-8

    out = _read([LATIN1_CSV])
    records = _records(out)

    assert not [i for i in out if isinstance(i, Refused)]
    assert len(records) == 9
    tegucigalpa = _cell(records, 3, 7)
    assert {k: tegucigalpa[k] for k in ("admin1", "admin2", "city_code", "sex", "value")} == {
        "admin1": "Francisco Morazán",
        "admin2": "Distrito Central",
        "city_code": "HNTGU",
        "sex": "female",
        "value": 760,
    }
    assert tegucigalpa["header"] == "Retornadas (mujeres)"
    assert tegucigalpa["date"] == "2024-04-30"
    assert {r.data["admin1"] for r in records} == {"Francisco Morazán", "Cortés", "Atlántida"}
    assert sum(r.data["value"] for r in records if r.data["sex"] == "total") == 1840 + 2315 + 412


def test_xlsx_with_a_malformed_dimension_loads_every_row_without_a_traceback():
    sheet = zipfile.ZipFile(WRONG_DIMENSION_XLSX).read("xl/worksheets/sheet1.xml")
    assert b'<dimension ref="A1:K"' in sheet  # xlrd3 alone raises ValueError on it

    records = _records(_read([WRONG_DIMENSION_XLSX]))

    assert len(records) == 23
    assert [r.data for r in records] == [
        {**r.data, "dataset": WRONG_DIMENSION_XLSX.name} for r in _records(_read([DTM_XLSX]))
    ]
    assert _cell(records, 5, 10)["value"] == 6210


def test_dates_are_normalised_as_libhxl_reads_them_and_an_unreadable_one_is_a_warning():
    out = _read([DATES_CSV])
    records = _records(out)

    assert not [i for i in out if isinstance(i, Refused)]
    assert len(records) == 8  # 4 rows x 2 counts: the row with no date keeps its counts
    by_row = {r.data["row"]: r.data for r in records if r.data["column"] == 5}
    assert {row: data.get("date") for row, data in by_row.items()} == {
        3: "2015-03-01",  # 1 March 2015
        4: "2015-03-15",  # 15/03/2015, day first
        5: "2015-03",
        6: None,  # not reported
    }
    assert by_row[3]["value"] == 12040 and by_row[6]["value"] == 11980
    assert _cell(records, 6, 6)["value"] == 6480
    warned = [r.data for r in records if "warnings" in r.data]
    assert [(w["row"], w["warnings"]) for w in warned] == [
        (
            6,
            ["column D (#date+reported): 'not reported' is not a date; counts kept without a date"],
        ),
    ] * 2


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1 March 2015", "2015-03-01"),
        ("01/03/2015", "2015-03-01"),
        ("2015-03-01", "2015-03-01"),
        (" 2015-3 ", "2015-03"),
        ("2015", "2015"),
        ("March 2015", "2015-03"),
        ("2015-03-01 10:30:00", "2015-03-01"),
        (2015, "2015"),
        ("", None),
        (None, None),
    ],
)
def test_date_cells_normalise_to_a_day_month_or_year(cell, expected):
    assert parse_date(cell) == expected


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("not reported", "'not reported' is not a date"),
        ("2015-02-30", "'2015-02-30' is not a date"),
        ("2015Q1", "'2015Q1' reads as 2015Q1, not a day, month or year"),
        ("1 March", "'1 March' has no year"),
        ("99999999999999999999999", "is not a date"),
    ],
)
def test_date_cells_that_cannot_be_carried_say_why(cell, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_date(cell)


# ------------------------------------------------------------ formats libhxl reads


def test_json_rows_and_json_objects_load_like_the_csv(tmp_path):
    rows = [["Region", "IDPs"], ["#adm1+name", "#affected+idps"], ["Banadir", 48210], ["Bay", ""]]
    arrays, objects = tmp_path / "arrays.json", tmp_path / "objects.json"
    arrays.write_bytes(orjson.dumps(rows))
    objects.write_bytes(orjson.dumps([{"#adm1+name": "Banadir", "#affected+idps": "48210"}]))

    from_arrays, from_objects = _records(_read([arrays])), _records(_read([objects]))

    assert [(r.data["admin1"], r.data["value"], r.data["row"]) for r in from_arrays] == [
        ("Banadir", 48210, 3)
    ]
    assert [(r.data["admin1"], r.data["value"]) for r in from_objects] == [("Banadir", 48210)]


def test_utf16_tab_separated_text_from_excel_loads(tmp_path):
    path = tmp_path / "sites.txt"
    text = "Région\tPDI\r\n#adm1+name\t#affected+idps\r\nGuéra\t1 250\r\nSalamat\t830\r\n"
    path.write_bytes(text.encode("utf-16"))

    out = _read([path])

    assert [i.reason for i in out if isinstance(i, Refused)] == [
        f"{path}:3: column B (#affected+idps): '1 250' is not a count of people"
    ]
    assert [(r.data["admin1"], r.data["value"]) for r in _records(out)] == [("Salamat", 830)]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "an HTML page, not a data file"),
        (b"\xd0\xcf\x11\xe0garbage", "not a readable HXL table: "),
        (b'{"rows": 1}', "not a readable HXL table: Could not usable JSON data"),
        (b"[[" * 100_000, "not a readable HXL table: "),
    ],
    ids=["empty", "html", "broken xls", "json without rows", "deep json"],
)
def test_unreadable_input_is_refused_in_one_line_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "input.csv"
    path.write_bytes(content)

    with pytest.raises(SourceFormatError) as raised:
        _read([path])

    assert str(raised.value).startswith(f"{path}: {problem}")
    assert "\n" not in str(raised.value)


def test_a_zip_bomb_is_refused_before_it_is_unzipped(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers, "MAX_UNZIPPED_BYTES", 1_000_000)  # 256 MiB in production
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("xl/worksheets/sheet1.xml", b"\0" * 2_000_000)
    assert path.stat().st_size < 10_000

    with pytest.raises(SourceFormatError) as raised:
        _read([path])

    assert str(raised.value) == (
        f"{path}: workbook would expand to 2,000,000 bytes (limit 1,000,000): "
        "refused as a possible zip bomb"
    )


def test_check_names_a_missing_file_and_an_unreachable_url(tmp_path):
    missing = tmp_path / "nope.csv"
    config = load_config(
        "hxl",
        hxl.HxlConfig,
        overrides={
            "partner": "iom-dtm",
            "inputs": [str(DTM_CSV), str(missing), "http://127.0.0.1:9/x.csv"],
        },
    )

    problems = hxl.SOURCE.check(config)

    assert problems[0] == f"{missing}: no such file or directory"
    assert problems[1].startswith("http://127.0.0.1:9/x.csv: could not fetch:")
    assert len(problems) == 2
