"""What the Airflow DAGs in `dags/` call (DESIGN.md §5). Nothing here imports Airflow.

* `watcher`: the Kafka trigger's `apply_function` for the sink's batch-landed topic: a wake-up call,
  never a ledger (the sink's offsets are the ledger; the transform DAG's fallback timetable covers a
  lost wake-up),
* `schedules`: the declarative source-schedule file (`dags/sources.yml`), validated with msgspec,
* `tasks`: plain callables, one per DAG task, returning small JSON-able summaries (Airflow XComs).
"""
