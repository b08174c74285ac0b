"""The `urbanflow` command line. Each command is a thin shell over an importable function."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connectors import demo as demo_module
from connectors import dlq as dlq_module
from connectors import quality
from connectors import status as status_module
from connectors import superset as superset_module
from connectors.api.cli import api_app, partners_app
from connectors.errors import UrbanFlowError
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import apply_topics, load_topics
from connectors.sdk import load_config, run_source
from connectors.sdk.config import describe_config
from connectors.sdk.state import StateStore
from connectors.settings import Settings, kafka_client_log_level
from connectors.sink import Sink
from connectors.sources.registry import all_sources, get_source
from connectors.transform import WAREHOUSE_BUILD, refresh_warehouse, run_dbt

app = typer.Typer(
    help="UrbanFlow: stream city data through Kafka into DuckDB, model it with dbt.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
topics_app = typer.Typer(
    help="Declared Kafka topics (infra/kafka/topics.yml).", no_args_is_help=True
)
source_app = typer.Typer(help="Source connectors.", no_args_is_help=True)
sink_app = typer.Typer(help="The Kafka -> DuckDB sink.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(source_app, name="source")
app.add_typer(sink_app, name="sink")
app.add_typer(api_app, name="api")
app.add_typer(partners_app, name="partners")
superset_app = typer.Typer(
    help="Superset dashboards as code (superset/): sync into the local Superset, export back.",
    no_args_is_help=True,
)
app.add_typer(superset_app, name="superset")
dlq_app = typer.Typer(
    help="Dead letters (<topic>.dlq): list them, show one, replay a selection after a fix.",
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@topics_app.command("apply")
def topics_apply() -> None:
    """Create or update every declared topic and its dead-letter twin (idempotent)."""
    settings = Settings.from_env()
    actions = apply_topics(
        settings.kafka_bootstrap,
        load_topics(settings.topics_file),
        replication_factor=settings.topic_replication_factor,
        min_insync_replicas=settings.topic_min_insync_replicas,
    )
    for name, action in sorted(actions.items()):
        out.print(f"  {name:<45} {action}")
    changed = sum(1 for a in actions.values() if a != "unchanged")
    out.print(f"topics: {len(actions)} declared, {changed} changed at {settings.kafka_bootstrap}")


@topics_app.command("list")
def topics_list() -> None:
    """Show the declared topics, their contracts and raw tables."""
    settings = Settings.from_env()
    table = Table("topic", "partitions", "event types", "raw table", "dlq")
    for spec in load_topics(settings.topics_file):
        table.add_row(
            spec.name,
            str(spec.partitions),
            ", ".join(spec.event_types),
            f"raw.{spec.raw_table}" if spec.sink else "-",
            spec.dlq_name if spec.dlq else "-",
        )
    out.print(table)


ConfigFile = Annotated[Path | None, typer.Option("--config", help="YAML file of source settings")]
Assignments = Annotated[
    list[str] | None, typer.Option("--set", help="key=value setting (repeatable)")
]
Inputs = Annotated[list[str] | None, typer.Argument(help="files, folders or URLs to read")]


def _source_config(
    name: str, inputs: list[str] | None, config: Path | None, sets: list[str] | None
):
    source = get_source(name)
    overrides = {"inputs": inputs} if inputs else None
    return source, load_config(
        name, source.config, file=config, assignments=sets or [], overrides=overrides
    )


@source_app.command("list")
def source_list() -> None:
    """Every installed source with its streams, topics and settings."""
    table = Table("source", "streams (topic, key)", "settings", "description")
    for source in all_sources().values():
        streams = "\n".join(f"{s.name}: {s.topic} (key: {s.key})" for s in source.streams)
        settings = "\n".join(
            f"{key}{'' if required else ' = ' + default}"
            for key, _, required, default in describe_config(source.config)
        )
        table.add_row(source.name, streams, settings, source.description)
    out.print(table)


@source_app.command("check")
def source_check(
    name: str, inputs: Inputs = None, config: ConfigFile = None, sets: Assignments = None
) -> None:
    """Validate a source's settings and reach its inputs, before any data moves."""
    source, parsed = _source_config(name, inputs, config, sets)
    problems = source.check(parsed)
    for problem in problems:
        console.print(f"[red]✗[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{name}: config valid, inputs reachable")


@source_app.command("run")
def source_run(
    name: str, inputs: Inputs = None, config: ConfigFile = None, sets: Assignments = None
) -> None:
    """Run a source once: send new events, checkpoint state after Kafka confirmed them."""
    source, parsed = _source_config(name, inputs, config, sets)
    settings = Settings.from_env()
    with EventProducer(settings.kafka_bootstrap, client_id=f"urbanflow-{name}") as producer:
        report = run_source(source, parsed, producer, StateStore(settings.state_dir, name))
    out.print(report.summary())


@sink_app.command("run")
def sink_run(
    until_caught_up: Annotated[
        bool, typer.Option("--until-caught-up", help="Stop once every partition is loaded")
    ] = False,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds")] = None,
    progress: Annotated[
        bool | None, typer.Option(help="Live progress line (default: on a TTY)")
    ] = None,
) -> None:
    """Load every sink topic into raw tables, exactly once; SIGTERM finishes the batch in hand."""
    settings = Settings.from_env()
    show = sys.stderr.isatty() if progress is None else progress
    sink = Sink(settings, load_topics(settings.topics_file), show_progress=show)
    stats = sink.run(until_caught_up=until_caught_up, max_seconds=max_seconds)
    out.print(stats.summary(str(settings.warehouse_path)))


@app.command("dbt", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt(ctx: typer.Context) -> None:
    """Run any dbt command under the warehouse lock shared with the sink, e.g. `urbanflow dbt test`;
    no arguments = `dbt build` of the whole project without unit tests."""
    run_dbt(Settings.from_env(), ctx.args or WAREHOUSE_BUILD)


@app.command()
def refresh(
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild every model from scratch")
    ] = False,
) -> None:
    """Build the marts from the events loaded since the last build: only what they feed, the whole
    project when it changed (or on the first build), nothing when no event arrived."""
    result = refresh_warehouse(Settings.from_env(), full_refresh=full_refresh)
    built = "nothing to build" if result.plan.selectors == [] else "built"
    out.print(f"{built} ({result.plan.reason}) in {result.seconds:.1f} s")


@app.command()
def gate() -> None:
    """The quality gate alone: copy the marts to a candidate database and validate it with the
    Great Expectations suites; publish nothing (`urbanflow publish` gates, then publishes)."""
    quality.run_gate(Settings.from_env(), publish=False, console=out)


@app.command()
def publish() -> None:
    """Write-audit-publish: a candidate that passes every check replaces serving.duckdb."""
    quality.run_gate(Settings.from_env(), publish=True, console=out)


@app.command()
def status() -> None:
    """Broker health, topics, consumer lag per partition, warehouse row counts and Airflow."""
    settings = Settings.from_env()
    specs = load_topics(settings.topics_file)
    report = status_module.broker_status(settings.kafka_bootstrap, specs, settings.sink_group)
    mark = "[green]up[/]" if report.broker_ok else "[red]down[/]"
    out.print(f"broker: {mark} — {report.broker_detail}")
    if report.topics:
        topics = Table("topic", "messages", title="topics")
        for name, count in report.topics.items():
            topics.add_row(name, f"{count:,}")
        out.print(topics)
    if report.lag:
        lag = Table(
            "topic",
            "partition",
            "end offset",
            "committed",
            "lag",
            title=f"lag ({settings.sink_group})",
        )
        for p in report.lag:
            committed = "-" if p.committed is None else f"{p.committed:,}"
            lag.add_row(p.topic, str(p.partition), f"{p.end_offset:,}", committed, f"{p.lag:,}")
        out.print(lag)
    counts = status_module.warehouse_counts(settings.warehouse_path)
    tables = Table("table", "rows", title=f"warehouse {settings.warehouse_path}")
    for name, rows in counts.items():
        tables.add_row(name, f"{rows:,}")
    out.print(tables if counts else f"warehouse: {settings.warehouse_path} not created yet")
    _print_airflow_status()
    if not report.broker_ok:
        raise typer.Exit(1)


TopicOption = Annotated[
    str | None,
    typer.Option("--topic", help="only this topic's dead letters (with or without .dlq)"),
]
SourceOption = Annotated[
    str | None, typer.Option("--source", help="only dead letters of this source (as listed)")
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason-contains", help="only dead letters whose reason has this")
]


def _dead_letters(
    settings: Settings, topic: str | None, source: str | None, reason: str | None
) -> list[dlq_module.DeadLetterRecord]:
    names = dlq_module.dlq_topics(load_topics(settings.topics_file), topic, settings.topics_file)
    letters = dlq_module.read_dead_letters(settings.kafka_bootstrap, names)
    return dlq_module.select(letters, source=source, reason_contains=reason)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


@dlq_app.command("list")
def dlq_list(
    topic: TopicOption = None, source: SourceOption = None, reason_contains: ReasonOption = None
) -> None:
    """Dead letters not yet replayed, by topic, source and reason: count, first and last seen."""
    settings = Settings.from_env()
    letters = _dead_letters(settings, topic, source, reason_contains)
    ledger = dlq_module.ReplayLedger(settings.state_dir)
    current, settled = dlq_module.outstanding(letters, ledger.replayed)
    groups = dlq_module.summarize(current)
    if groups:
        table = Table("topic", "source", "reason", "count", "first seen", "last seen", "latest")
        for g in groups:
            table.add_row(
                g.topic,
                g.source,
                Text(g.reason),
                f"{g.count:,}",
                _when(g.first_seen),
                _when(g.last_seen),
                g.latest,
            )
        out.print(table)
    plural = "" if len(groups) == 1 else "s"
    out.print(
        f"dlq: {len(current):,} dead letters in {len(groups)} group{plural}"
        f" ({len(settled):,} replayed or repeated, not shown)"
    )


@dlq_app.command("show")
def dlq_show(
    topic: Annotated[str, typer.Argument(help="the dead-letter topic (.dlq may be omitted)")],
    partition: int,
    offset: int,
) -> None:
    """One dead letter: its coordinates, headers, key and original payload."""
    settings = Settings.from_env()
    letter = dlq_module.read_one(settings.kafka_bootstrap, topic, partition, offset)
    original = letter.original
    out.print(f"dead letter {letter.coordinates} at {_when(letter.seen)}", highlight=False)
    out.print(
        f"original: {':'.join(map(str, original))}" if original else f"for topic {letter.topic}",
        "(refused by the sink)" if original else "(refused by a source)",
        highlight=False,
    )
    for name, value in letter.headers.items():
        out.print(Text(f"  {name}: {value}"))
    key = "-" if letter.key is None else letter.key.decode("utf-8", "replace")
    out.print(Text(f"key: {key}"))
    out.print("payload:")
    out.print(Text(dlq_module.pretty_payload(letter.value)))


@dlq_app.command("replay")
def dlq_replay(
    topic: TopicOption = None,
    source: SourceOption = None,
    reason_contains: ReasonOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be replayed, send nothing")
    ] = False,
) -> None:
    """Re-send the selected dead letters to their original topics, value and key unchanged (the
    event keeps its id); each is replayed once, and what still fails comes back with its reason."""
    settings = Settings.from_env()
    letters = _dead_letters(settings, topic, source, reason_contains)
    ledger = dlq_module.ReplayLedger(settings.state_dir)
    if dry_run:
        report = dlq_module.replay(letters, ledger, None)
    else:
        current = dlq_module.outstanding(letters, ledger.replayed)[0]
        targets = {d.topic for d in current if d.original is not None}
        dlq_module.check_topics_exist(settings.kafka_bootstrap, targets)
        with EventProducer(settings.kafka_bootstrap, client_id="urbanflow-dlq") as producer:
            report = dlq_module.replay(letters, ledger, producer)
    out.print(report.summary(dry_run=dry_run), highlight=False)


def _supersetctl(command: str) -> None:
    """Superset runs in its own venv (SQLAlchemy 1.4), so its commands go through supersetctl."""
    raise typer.Exit(superset_module.run(Settings.from_env(), command))


@superset_app.command("sync")
def superset_sync() -> None:
    """Import superset/ into the running Superset (idempotent, by UUID)."""
    _supersetctl("sync")


@superset_app.command("export")
def superset_export() -> None:
    """Write the dashboards as they are in Superset back to superset/, normalized (no ids)."""
    _supersetctl("export")


def _print_airflow_status() -> None:
    """Airflow's health (scheduler, triggerer, dag-processor) and the last run of each DAG."""
    from connectors.orchestration.status import airflow_status

    airflow = airflow_status()
    mark = "[green]healthy[/]" if airflow.healthy else "[yellow]not healthy[/]"
    out.print(f"airflow: {mark if airflow.reachable else '[dim]not running[/]'} — {airflow.detail}")
    if airflow.components:
        out.print("  " + ", ".join(f"{name} {state}" for name, state in airflow.components.items()))
    if airflow.last_runs:
        runs = Table("DAG", "last run", "type", "state", "started", title="last DAG runs")
        for dag_id, run in sorted(airflow.last_runs.items()):
            runs.add_row(
                dag_id,
                run.get("dag_run_id") or "-",
                run.get("run_type") or "-",
                run.get("state") or "-",
                run.get("start_date") or "-",
            )
        out.print(runs)


@app.command()
def demo(
    sample_data: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the sample world (default: UF_SAMPLE_DATA_DIR, <home>/sample_data)"
        ),
    ] = None,
    airflow: Annotated[
        bool,
        typer.Option(
            "--airflow",
            help="Through the running stack (`make up`): source DAGs, the sink service and the "
            "asset-driven transform DAG; the inputs come from the source schedules file",
        ),
    ] = False,
) -> None:
    """Run the pipeline end to end on the bundled sample world and print where to look."""
    settings = Settings.from_env()
    if airflow:
        from connectors.orchestration.demo import run_airflow_demo

        run_airflow_demo(settings, out)
        return
    demo_module.run_demo(settings, sample_data or settings.sample_data_dir, out)


def main() -> None:
    """Entry point: actionable errors become one red line and exit code 1, not a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("connectors").setLevel(logging.INFO)
    # kafka-python's retries and event-loop timing notes are not what the user acts on: our errors
    # name the broker or topic and the fix
    logging.getLogger("kafka").setLevel(kafka_client_log_level())
    try:
        app()
    except UrbanFlowError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(1)
