"""What `urbanflow refresh` builds after new events (connectors/transform.py plan_build)."""

from __future__ import annotations

import shutil
from pathlib import Path

from connectors.kafka.topics import load_topics
from connectors.settings import Settings
from connectors.transform import (
    QUALITY_SELECTOR,
    SINK_SELECTOR,
    plan_build,
    project_fingerprint,
    topic_sources,
)

SOURCES = {
    "stats.sdmx.observation.v1": "sdmx.stats_sdmx_observation_v1",
    "partner.iati.activity.v1": "iati.partner_iati_activity_v1",
}


def plan(offsets, built, *, project="p1", built_project="p1", quality=False):
    return plan_build(
        offsets=offsets,
        built_offsets=built,
        project_hash=project,
        built_project_hash=built_project,
        topic_sources=SOURCES,
        new_quality_results=quality,
    )


def test_first_build_and_changed_project_build_everything():
    first = plan({("stats.sdmx.observation.v1", 0): 1}, {}, built_project=None)
    assert first.selectors is None and not first.full_refresh
    changed = plan({("stats.sdmx.observation.v1", 0): 5}, {}, project="p2")
    assert changed.selectors is None
    assert changed.reason == "the dbt project changed since the last build"
    assert changed.full_refresh and "--full-refresh" in changed.dbt_args


def test_only_topics_whose_offsets_moved_are_selected_with_their_downstream():
    offsets = {
        ("stats.sdmx.observation.v1", 0): 10,
        ("stats.sdmx.observation.v1", 1): 7,
        ("partner.iati.activity.v1", 0): 3,
    }
    built = {
        ("stats.sdmx.observation.v1", 0): 10,
        ("stats.sdmx.observation.v1", 1): 6,  # one new event on partition 1
        ("partner.iati.activity.v1", 0): 3,
    }
    result = plan(offsets, built)
    assert result.selectors == ["source:sdmx.stats_sdmx_observation_v1+", SINK_SELECTOR]
    start = result.dbt_args.index("--select")
    assert result.dbt_args[start : start + 3] == ["--select", *result.selectors]
    assert "unit_test" in result.dbt_args  # production builds leave unit tests to CI


def test_a_new_partition_counts_as_moved_and_no_new_events_builds_nothing():
    assert plan({("partner.iati.activity.v1", 2): 1}, {}).selectors == [
        "source:iati.partner_iati_activity_v1+",
        SINK_SELECTOR,
    ]
    same = {("partner.iati.activity.v1", 0): 3}
    nothing = plan(same, same)
    assert nothing.selectors == []
    assert nothing.reason == "no new events since the last build"


def test_a_topic_without_a_dbt_source_does_not_trigger_a_build():
    assert plan({("ops.warehouse.batch_landed.v1", 0): 9}, {}).selectors == []


def test_every_sink_topic_maps_to_its_dbt_source():
    settings = Settings.from_env()
    mapping = topic_sources(settings)
    assert mapping["stats.sdmx.observation.v1"] == "sdmx.stats_sdmx_observation_v1"
    assert mapping["utility.meter.reading.v1"] == "utilities.utility_meter_reading_v1"
    sink_topics = {spec.name for spec in load_topics(settings.topics_file) if spec.sink}
    assert sink_topics <= set(mapping)


def test_project_fingerprint_changes_with_any_model_file(tmp_path: Path):
    project = tmp_path / "dbt_project"
    shutil.copytree(
        Settings.from_env().dbt_project_dir,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    before = project_fingerprint(project)
    assert project_fingerprint(project) == before
    model = project / "models" / "marts" / "core" / "dim_city.sql"
    model.write_text(model.read_text() + "\n-- a comment\n")
    assert project_fingerprint(project) != before


def test_new_quality_gate_results_rebuild_their_mart_with_or_without_new_events():
    same = {("partner.iati.activity.v1", 0): 3}
    alone = plan(same, same, quality=True)
    assert alone.selectors == [QUALITY_SELECTOR]
    assert alone.reason == "new quality gate results"
    both = plan({("partner.iati.activity.v1", 0): 4}, same, quality=True)
    assert both.selectors == [
        "source:iati.partner_iati_activity_v1+",
        SINK_SELECTOR,
        QUALITY_SELECTOR,
    ]


def test_new_pipeline_health_checks_are_built_so_the_next_publish_carries_them():
    from connectors.transform import HEALTH_SELECTOR

    offsets = {("stats.sdmx.observation.v1", 0): 10}
    result = plan_build(
        offsets=offsets,
        built_offsets=offsets,
        project_hash="p1",
        built_project_hash="p1",
        topic_sources=SOURCES,
        new_health_results=True,
    )
    assert result.selectors == [HEALTH_SELECTOR]
    assert result.reason == "new pipeline health checks"


def test_new_api_rejections_rebuild_what_reads_the_rejection_log():
    from connectors.transform import API_REJECTIONS_SELECTOR

    result = plan_build(
        offsets={},
        built_offsets={},
        project_hash="p1",
        built_project_hash="p1",
        topic_sources=SOURCES,
        new_api_rejections=True,
    )
    assert result.selectors == [API_REJECTIONS_SELECTOR]


def test_an_empty_warehouse_waits_for_its_first_event():
    """Nothing landed and never built: a build would only make empty marts (and, in Airflow, a task
    per node reporting them), so the plan is to wait; `--full-refresh` still builds them."""
    result = plan({("stats.sdmx.observation.v1", 0): 0}, {}, built_project=None)
    assert result.selectors == [] and "nothing has landed yet" in result.reason
    # the health DAG's checks of the empty pipeline are no reason either
    health = plan_build(
        offsets={},
        built_offsets={},
        project_hash="p1",
        built_project_hash=None,
        topic_sources=SOURCES,
        new_health_results=True,
    )
    assert health.selectors == []
