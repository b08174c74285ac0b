"""The versioned suites in quality/expectations.yml hold the checks the quality gate promises."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.errors import ConfigError
from connectors.quality.suites import load_batches

RAW_TABLES = ["stats_sdmx_observation_v1", "utility_water_meter_reading_v1"]


def _checks(env: dict[str, str] | None = None) -> set[tuple[str, str, str, str | None]]:
    return {
        (batch.suite, batch.name, exp.type, exp.column)
        for batch in load_batches(RAW_TABLES, env=env or {})
        for exp in batch.expectations
    }


def _kwargs(name: str, expectation: str, column: str, env: dict[str, str] | None = None) -> dict:
    (batch,) = [b for b in load_batches(RAW_TABLES, env=env or {}) if b.name == name]
    (found,) = [e for e in batch.expectations if e.type == expectation and e.column == column]
    return found.kwargs


@pytest.mark.parametrize("table", RAW_TABLES)
def test_raw_suite_checks_envelope_and_freshness_of_every_raw_table(table):
    checks = _checks()
    name = f"raw.{table}"
    for column in ("event_id", "source", "type", "ingested_at"):
        assert ("raw", name, "expect_column_values_to_not_be_null", column) in checks
    assert ("raw", name, "expect_column_values_to_be_between", "ingested_hours_ago") in checks
    assert ("raw", name, "expect_column_min_to_be_between", "ingested_hours_ago") in checks


def test_raw_freshness_threshold_comes_from_the_file_and_the_environment():
    default = _kwargs(
        "raw.stats_sdmx_observation_v1", "expect_column_min_to_be_between", "ingested_hours_ago"
    )
    overridden = _kwargs(
        "raw.stats_sdmx_observation_v1",
        "expect_column_min_to_be_between",
        "ingested_hours_ago",
        env={"UF_QUALITY_FRESHNESS_MAX_HOURS": "48"},
    )
    assert default["max_value"] == 840
    assert overridden["max_value"] == 48


def test_a_bad_threshold_in_the_environment_names_the_variable():
    with pytest.raises(ConfigError, match="UF_QUALITY_FRESHNESS_MAX_HOURS='soon'"):
        load_batches(RAW_TABLES, env={"UF_QUALITY_FRESHNESS_MAX_HOURS": "soon"})


def test_staging_suite_checks_types_ranges_and_code_lists():
    checks = _checks()
    stg = "staging.stg_sdmx__observations"
    assert ("staging", stg, "expect_compound_columns_to_be_unique", "source_urn+event_id") in checks
    assert ("staging", stg, "expect_column_values_to_be_of_type", "obs_value") in checks
    assert ("staging", stg, "expect_column_values_to_be_in_set", "sex_code") in checks
    assert ("staging", stg, "expect_column_values_to_match_regex", "time_period") in checks
    assert ("staging", stg, "expect_column_values_to_be_between", "unit_mult") in checks


def test_mart_suite_checks_keys_percentages_periods_totals_and_disaggregations():
    checks = _checks()
    fct = "marts.fct_city_indicator"
    assert ("marts", fct, "expect_column_values_to_be_unique", "city_indicator_key") in checks
    assert (
        "marts",
        fct,
        "expect_compound_columns_to_be_unique",
        "city_code+series_code+period+sex+age_group",
    ) in checks
    assert ("marts", fct, "expect_column_values_to_be_in_set", "sex") in checks
    assert (
        "marts",
        f"{fct}__totals",
        "expect_column_pair_values_to_be_equal",
        "mart_rows=model_rows",
    ) in checks
    assert (
        "marts",
        f"{fct}__sex_disaggregation",
        "expect_column_values_to_be_between",
        "outside_parts_by",
    ) in checks


def test_percentages_are_bounded_0_to_100_on_percent_rows_only():
    kwargs = _kwargs("marts.fct_city_indicator", "expect_column_values_to_be_between", "value")
    assert (kwargs["min_value"], kwargs["max_value"]) == (0, 100)
    assert kwargs["row_condition"] == 'unit=="percent"'


def test_no_period_lies_after_the_current_year():
    kwargs = _kwargs(
        "marts.fct_city_indicator", "expect_column_values_to_be_between", "period_year"
    )
    assert kwargs["max_value"] == datetime.now(UTC).year


def test_city_population_must_be_positive():
    kwargs = _kwargs("seeds.ref_cities", "expect_column_values_to_be_between", "population")
    assert kwargs["min_value"] == 1


def test_disaggregation_tolerance_is_configurable():
    kwargs = _kwargs(
        "marts.fct_city_indicator__sex_disaggregation",
        "expect_column_values_to_be_between",
        "outside_parts_by",
        env={"UF_QUALITY_DISAGGREGATION_TOLERANCE": "0.1"},
    )
    assert kwargs == {"column": "outside_parts_by", "min_value": 0, "max_value": 0.1}


def test_every_expectation_is_a_valid_great_expectations_expectation():
    from great_expectations.expectations.registry import get_expectation_impl

    batches = load_batches(RAW_TABLES, env={})
    built = [get_expectation_impl(e.type)(**e.kwargs) for b in batches for e in b.expectations]
    assert len(built) == sum(len(b.expectations) for b in batches) > 50
