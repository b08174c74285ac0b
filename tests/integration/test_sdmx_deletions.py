"""SDMX data-set actions through the real pipeline: source -> Kafka -> sink -> dbt build.

A Delete data set sends deletion events (contract v2); after the next incremental `dbt build`
the deleted observation is gone from staging (only its deletion marker stays), from
int_indicators__observations and from the indicator marts, while the others are untouched.
Re-publishing the value afterwards brings it back, and a `--full-refresh` build then gives the
same marts as the incremental builds did.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import duckdb
import pytest

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.sdk import run_source
from connectors.sdk.state import StateStore
from connectors.settings import Settings
from connectors.sink import Sink
from connectors.sources import sdmx
from connectors.transform import run_dbt

pytestmark = pytest.mark.integration
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sdmx" / "json_v2_series.json"
V1, V2 = "org.urbanflow.stats.observation.v1", "org.urbanflow.stats.observation.v2"
#: This run's own publisher: the SDMX topic is shared with every other test (and the sample
#: world publishes KNBS series too), and each warehouse here loads the whole topic.
AGENCY = f"KNBST{uuid.uuid4().hex[:6].upper()}"
SOURCE_URN = f"urn:nso:{AGENCY.lower()}"
#: Years no sample feed publishes (they start in 2018), so the marts' rows of this publisher are
#: easy to tell from the sample world's.
FIRST_YEAR = 2013


@pytest.fixture
def topics(settings: Settings) -> list:
    """The real topics, the SDMX one declaring both observation versions: v2 events carry the
    deletions (infra/kafka/topics.yml needs the same line for production)."""
    specs = [
        dataclasses.replace(spec, event_types=tuple(dict.fromkeys((*spec.event_types, V1, V2))))
        if spec.name == sdmx.TOPIC
        else spec
        for spec in load_topics(settings.topics_file)
    ]
    apply_topics(settings.kafka_bootstrap, specs)
    return specs


def _message(action: str, keep: set[tuple[str, str]] | None = None, year: int = FIRST_YEAR) -> dict:
    """The KNBS fixture with `action`, for periods `year` and `year + 1` (the fixture's 2021 and
    2022); `keep` (series key, observation key) empties the others out (a Delete data set lists
    only what it deletes, as empty arrays)."""
    message = json.loads(FIXTURE.read_bytes().replace(b"=KNBS:", f"={AGENCY}:".encode()))
    periods = message["data"]["structures"][0]["dimensions"]["observation"][0]["values"]
    for offset, period in enumerate(periods):
        period.pop("name", None)
        period["id" if "id" in period else "value"] = str(year + offset)
    data_set = message["data"]["dataSets"][0]
    data_set["action"] = action
    if keep is not None:
        for series_key, series in list(data_set["series"].items()):
            series["observations"] = {
                k: [] for k in series["observations"] if (series_key, k) in keep
            }
            if not series["observations"]:
                del data_set["series"][series_key]
    return message


def _pipeline(settings: Settings, topics: list, path: Path) -> int:
    config = sdmx.SdmxConfig(inputs=[str(path)])
    with EventProducer(settings.kafka_bootstrap) as producer:
        report = run_source(sdmx.SOURCE, config, producer, StateStore(settings.state_dir, "sdmx"))
    Sink(settings, topics).run(until_caught_up=True)
    run_dbt(settings, ["build"], capture=True)
    return report.sent


def _rows(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _city_periods(settings: Settings, relation: str, where: str = "true") -> set[tuple]:
    return set(
        _rows(
            settings,
            f"select city_code, {'period' if relation.startswith('marts') else 'time_period'} "
            f"from {relation} where source_urn = '{SOURCE_URN}' and {where}",
        )
    )


def _everything(year: int = FIRST_YEAR) -> set[tuple[str, str]]:
    return {(city, str(y)) for city in ("KENBO", "KEMBA") for y in (year, year + 1)}


def _remaining(year: int = FIRST_YEAR) -> set[tuple[str, str]]:
    return _everything(year) - {("KENBO", str(year))}


EVERYTHING, REMAINING = _everything(), _remaining()


def _load_then_delete_nairobi_first_year(
    settings: Settings, topics: list, folder: Path, year: int = FIRST_YEAR
) -> Path:
    """Every test's own periods: the topics keep other tests' events, and a first build reads
    them all at once."""
    upserts = folder / "knbs_information.json"
    upserts.write_text(json.dumps(_message("Information", year=year)), encoding="utf-8")
    assert _pipeline(settings, topics, upserts) == 4
    assert _city_periods(
        settings, "marts.fct_city_indicator", f"period_year between {year} and {year + 1}"
    ) == _everything(year)

    # series "0:0:0" is Nairobi (KENBO); its observation "0" is the first year
    deletion = folder / "knbs_delete.json"
    deletion.write_text(
        json.dumps(_message("Delete", keep={("0:0:0", "0")}, year=year)), encoding="utf-8"
    )
    assert _pipeline(settings, topics, deletion) == 1
    return upserts


def test_a_delete_data_set_removes_the_observation_from_staging_intermediate_and_marts(
    settings, topics, tmp_path
):
    upserts = _load_then_delete_nairobi_first_year(settings, topics, tmp_path)
    marts = ("marts.fct_city_indicator", "marts.fct_slum_indicators")
    mine = f"period_year between {FIRST_YEAR} and {FIRST_YEAR + 1}"

    assert _city_periods(settings, "staging.stg_sdmx__observations", "not is_deletion") == (
        REMAINING
    )
    assert _rows(
        settings,
        "select city_code, time_period, event_type, obs_value from "
        f"staging.stg_sdmx__observations where is_deletion and source_urn = '{SOURCE_URN}'",
    ) == [("KENBO", str(FIRST_YEAR), V2, None)]
    assert _city_periods(settings, "intermediate.int_indicators__observations") == REMAINING
    assert [_city_periods(settings, mart, mine) for mart in marts] == [REMAINING] * 2

    # the publisher sends the observation again: it is staged anew and back, with its value
    assert _pipeline(settings, topics, upserts) == 1
    assert _city_periods(settings, "intermediate.int_indicators__observations") == EVERYTHING
    assert _rows(
        settings,
        "select value from intermediate.int_indicators__observations where city_code = 'KENBO' "
        f"and time_period = '{FIRST_YEAR}' and source_urn = '{SOURCE_URN}'",
    ) == [(54.5,)]
    assert [_city_periods(settings, mart, mine) for mart in marts] == [EVERYTHING] * 2


#: Mart and intermediate columns a rebuild must reproduce (all but when a row was staged).
_MART_ROW = (
    "city_indicator_key, city_code, period, series_code, sex, age_group, value, obs_status, "
    "source_urn, loaded_at"
)
_INT_ROW = "series_key, time_period, value, event_id, revision_count, ingested_at"


def _built(settings: Settings, year: int) -> tuple[list[tuple], list[tuple]]:
    """This publisher's rows of `year` and `year + 1` in fct_city_indicator and
    int_indicators__observations."""
    mine = f"source_urn = '{SOURCE_URN}' and period_year between {year} and {year + 1}"
    return (
        _rows(
            settings,
            f"select {_MART_ROW} from marts.fct_city_indicator where {mine} order by 2, 3",
        ),
        _rows(
            settings,
            f"select {_INT_ROW} from intermediate.int_indicators__observations where {mine} "
            "order by 1, 2",
        ),
    )


def test_a_replace_after_a_delete_gives_the_same_marts_incrementally_and_on_a_full_refresh(
    settings, topics, tmp_path
):
    """Upsert, Delete, then a Replace identical to the upsert: the re-published observation is a
    new event (not a copy of the first upsert), so a full refresh keeps it as the incremental
    builds did."""
    year = 2009  # not the other tests' periods
    _load_then_delete_nairobi_first_year(settings, topics, tmp_path, year)
    replace = tmp_path / "knbs_replace.json"
    replace.write_text(json.dumps(_message("Replace", year=year)), encoding="utf-8")
    assert _pipeline(settings, topics, replace) == 1
    incremental_mart, incremental_int = _built(settings, year)

    run_dbt(settings, ["build", "--full-refresh"], capture=True)

    assert {(row[1], row[2]) for row in incremental_mart} == _everything(year)
    assert [row[6] for row in incremental_mart if row[1:3] == ("KENBO", str(year))] == [54.5]
    assert _built(settings, year) == (incremental_mart, incremental_int)
    # staging rebuilt from raw: Nairobi's first year had three events (upsert, delete, replace);
    # the upsert is superseded, the deletion marker and the replace stay
    assert _rows(
        settings,
        "select count(*) filter (not is_deletion), count(*) filter (is_deletion) "
        f"from staging.stg_sdmx__observations where source_urn = '{SOURCE_URN}' "
        f"and time_period in ('{year}', '{year + 1}')",
    ) == [(4, 1)]
