{#- The pipeline-health tables the Airflow DAGs append to (connectors/orchestration/health.py),
    created here too, on every run's start, so their sources exist and `dbt build` works on a
    fresh warehouse before any DAG has run. Same statements as health.TABLES_DDL: change both
    (tests/unit/test_orchestration.py compares them). -#}
{% macro create_pipeline_health_tables() %}
create schema if not exists raw;
create table if not exists raw._pipeline_health (
    checked_at timestamptz not null,
    measure varchar not null,
    subject varchar not null,
    value bigint not null
);
create table if not exists raw._source_freshness (
    checked_at timestamptz not null,
    source_name varchar not null,
    table_name varchar not null,
    status varchar not null,
    max_loaded_at timestamptz,
    max_loaded_age_s double,
    warn_after_s bigint,
    error_after_s bigint,
    error varchar
);
create table if not exists raw._run_failures (
    failed_at timestamptz not null,
    dag_id varchar not null,
    task_id varchar not null,
    attempt integer not null,
    source varchar,
    error varchar not null
);
alter table raw._run_failures add column if not exists run_id varchar;
{% endmacro %}
