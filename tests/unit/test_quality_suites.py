"""The versioned suites in quality/expectations.yml hold the checks the quality gate promises."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from connectors.errors import ConfigError
from connectors.quality.suites import load_batches
from connectors.settings import Settings

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
    assert ("staging", stg, "expect_column_values_to_be_of_type", "obs_value") in checks
    assert ("staging", stg, "expect_column_values_to_be_in_set", "sex_code") in checks
    assert ("staging", stg, "expect_column_values_to_match_regex", "time_period") in checks
    assert ("staging", stg, "expect_column_values_to_be_between", "unit_mult") in checks


def test_mart_suite_checks_keys_percentages_periods_totals_and_disaggregations():
    checks = _checks()
    fct = "marts.fct_city_indicator"
    assert ("marts", fct, "expect_column_values_to_be_unique", "city_indicator_key") in checks
    assert ("marts", fct, "expect_column_values_to_be_in_set", "period_type") in checks
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


# --- one place for each kind of check (quality/README.md) ---------------------------------------

#: GE expectation -> the dbt constraint or data test that already guarantees it on the same column.
_SAME_CHECK = {
    "expect_column_values_to_be_unique": {"primary_key", "unique"},
    "expect_column_values_to_not_be_null": {"not_null", "primary_key"},
    "expect_compound_columns_to_be_unique": {"unique_combination_of_columns"},
    "expect_column_values_to_be_in_set": {"check", "accepted_values"},
    "expect_column_values_to_be_between": {"check", "accepted_range"},
}


def _dbt_checks(project: Path) -> dict[str, set[tuple[str, str]]]:
    """model or seed -> {(constraint or test, column)}; compound keys as `a+b`."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in [*(project / "models").rglob("*.yml"), *(project / "seeds").glob("*.yml")]:
        properties = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for node in [*properties.get("models", []), *properties.get("seeds", [])]:
            checks = found.setdefault(node["name"], set())
            for test in node.get("data_tests", []):
                if isinstance(test, dict) and "unique_combination_of_columns" in test:
                    spec = test["unique_combination_of_columns"]["arguments"]
                    columns = "+".join(spec["combination_of_columns"])
                    checks.add(("unique_combination_of_columns", columns))
            for column in node.get("columns", []):
                for constraint in column.get("constraints", []):
                    checks.add((constraint["type"], column["name"]))
                for test in column.get("data_tests", []):
                    name = test if isinstance(test, str) else next(iter(test))
                    checks.add((name, column["name"]))
    return found


def _duplicated_checks(batches, dbt_checks) -> list[str]:
    duplicated = []
    for batch in batches:
        checks = dbt_checks.get(batch.name.split(".")[-1], set())
        for exp in batch.expectations:
            same = {kind for kind, column in checks if column == exp.column}
            hits = same & _SAME_CHECK.get(exp.type, set())
            if exp.type == "expect_column_values_to_be_unique" and "primary_key" in same:
                continue  # the published key, re-checked on the copy on purpose (README)
            if hits and not exp.kwargs.get("row_condition"):
                duplicated.append(f"{batch.name} {exp.type} {exp.column}: dbt {sorted(hits)}")
    return duplicated


def test_no_gate_expectation_repeats_a_dbt_constraint_or_test_except_published_keys():
    batches = load_batches(RAW_TABLES, env={})
    assert _duplicated_checks(batches, _dbt_checks(Settings.from_env().dbt_project_dir)) == []


def test_a_gate_expectation_that_repeats_a_dbt_test_is_reported():
    (batch,) = [b for b in load_batches(RAW_TABLES, env={}) if b.name == "marts.dim_city"]
    checks = {"dim_city": {("primary_key", "city_code"), ("not_null", "population")}}
    assert _duplicated_checks([batch], checks) == []  # the key alone is allowed
    checks["dim_city"].add(("check", "population"))
    assert _duplicated_checks([batch], checks) == [
        "marts.dim_city expect_column_values_to_be_between population: dbt ['check']"
    ]
