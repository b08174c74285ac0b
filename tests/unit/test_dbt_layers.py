"""The dbt project's layers read the same everywhere (dbt_project/README.md, "Layer rules").

Checked on the files alone, no dbt run: only staging reads `source()`, so marts read only `ref()`s;
models are named `stg_<folder>__<entity>` / `int_<folder>__<entity>`; every model folder has one
`_<folder>__models.yml` (and at most one `_<folder>__docs.md`), every staging folder one
`_<folder>__sources.yml`; every macro is described; every topic the sink loads is measured by
`fct_source_health`. Each rule is also shown to catch a project that breaks it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from connectors.kafka.topics import load_topics
from connectors.settings import Settings

SOURCE_CALL = re.compile(r"\bsource\s*\(")
MACRO_DEF = re.compile(r"\{%-?\s*macro\s+(\w+)\s*\(([^)]*)\)")
LAYER_PREFIX = {"staging": "stg", "intermediate": "int"}
#: A source whose tables are one raw table per Kafka topic (stg_ops__raw_table_loads reads it).
SINK_TOPIC_META = "sink_topic_tables"


def _yml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _model_folders(models: Path) -> dict[Path, list[Path]]:
    folders: dict[Path, list[Path]] = {}
    for sql in sorted(models.rglob("*.sql")):
        folders.setdefault(sql.parent, []).append(sql)
    return folders


def source_calls_outside_staging(project: Path) -> list[str]:
    models = project / "models"
    return [
        f"{sql.relative_to(project)} calls source(): only staging reads sources"
        for sql in sorted(models.rglob("*.sql"))
        if sql.relative_to(models).parts[0] != "staging"
        and SOURCE_CALL.search(sql.read_text(encoding="utf-8"))
    ]


def misnamed_models(project: Path) -> list[str]:
    """Staging and intermediate models are `<stg|int>_<folder>__<entity>`, in snake case."""
    models = project / "models"
    problems = []
    for sql in sorted(models.rglob("*.sql")):
        parts = sql.relative_to(models).parts
        prefix = LAYER_PREFIX.get(parts[0])
        if prefix is None:
            continue
        folder = parts[-2] if len(parts) > 2 else "<domain>"
        pattern = rf"{prefix}_{re.escape(folder)}__[a-z0-9]+(?:_[a-z0-9]+)*"
        if len(parts) != 3 or not re.fullmatch(pattern, sql.stem):
            problems.append(
                f"{sql.relative_to(project)}: expected {parts[0]}/<folder>/"
                f"{prefix}_<folder>__<entity>.sql with <folder> = {folder}"
            )
    return problems


def folder_property_files(project: Path) -> list[str]:
    """One `_<folder>__models.yml` per model folder, describing exactly that folder's models; at
    most one `_<folder>__docs.md`; sources only in staging, one `_<folder>__sources.yml` each."""
    models = project / "models"
    problems = []
    folders = _model_folders(models)
    for folder, sqls in folders.items():
        where = folder.relative_to(project)
        ymls = sorted(folder.glob("_*__models.yml"))
        if [p.name for p in ymls] != [f"_{folder.name}__models.yml"]:
            problems.append(
                f"{where}: expected exactly _{folder.name}__models.yml, found "
                f"{[p.name for p in ymls] or 'none'}"
            )
        described = {m["name"] for p in ymls for m in _yml(p).get("models", [])}
        if missing := sorted({sql.stem for sql in sqls} - described):
            problems.append(f"{where}: models without properties: {missing}")
        if strangers := sorted(described - {sql.stem for sql in sqls}):
            problems.append(f"{where}: _{folder.name}__models.yml describes {strangers}")
        docs = [p.name for p in folder.glob("_*__docs.md")]
        if docs and docs != [f"_{folder.name}__docs.md"]:
            problems.append(f"{where}: expected one _{folder.name}__docs.md, found {docs}")
        in_staging = folder.relative_to(models).parts[0] == "staging"
        sources = [p.name for p in folder.glob("_*__sources.yml")]
        if in_staging and sources != [f"_{folder.name}__sources.yml"]:
            problems.append(f"{where}: expected _{folder.name}__sources.yml, found {sources}")
    for path in sorted(models.rglob("*.yml")):
        properties = _yml(path)
        if properties.get("sources") and path.relative_to(models).parts[0] != "staging":
            problems.append(f"{path.relative_to(project)} declares sources outside staging")
        if properties.get("models") is not None and path.parent not in folders:
            problems.append(f"{path.relative_to(project)} describes models outside their folder")
    return problems


def undocumented_macros(project: Path) -> list[str]:
    """Every macro of macros/*.sql has a description and its arguments, in signature order."""
    documented = {
        m["name"]: m
        for path in (project / "macros").glob("*.yml")
        for m in _yml(path).get("macros", [])
    }
    problems = []
    for sql in sorted((project / "macros").rglob("*.sql")):
        for name, signature in MACRO_DEF.findall(sql.read_text(encoding="utf-8")):
            arguments = [a.split("=")[0].strip() for a in signature.split(",") if a.strip()]
            entry = documented.get(name)
            if entry is None or not str(entry.get("description", "")).strip():
                problems.append(f"macros/{sql.name}: macro {name} has no description")
            elif [a["name"] for a in entry.get("arguments", [])] != arguments:
                problems.append(f"macros/{sql.name}: document {name}'s arguments {arguments}")
    return problems


def sink_topic_tables(project: Path) -> set[str]:
    """Raw tables of the sources flagged as sink-loaded topic tables (what fct_source_health
    measures), as stg_ops__raw_table_loads selects them from dbt's graph."""
    tables = set()
    for path in (project / "models").rglob("*__sources.yml"):
        for source in _yml(path).get("sources", []):
            if (source.get("config", {}).get("meta") or {}).get(SINK_TOPIC_META):
                tables |= {t.get("identifier", t["name"]) for t in source.get("tables", [])}
    return tables


# --- the project follows the rules --------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> Path:
    return Settings.from_env().dbt_project_dir


def test_no_mart_or_intermediate_model_reads_a_source(project):
    assert source_calls_outside_staging(project) == []


def test_staging_and_intermediate_models_are_named_after_their_folder(project):
    assert misnamed_models(project) == []


def test_each_model_folder_has_one_models_yml_and_each_staging_folder_one_sources_yml(project):
    assert folder_property_files(project) == []


def test_every_macro_is_documented_with_its_arguments(project):
    assert undocumented_macros(project) == []


def test_every_topic_the_sink_loads_is_measured_by_source_health(project):
    settings = Settings.from_env()
    loaded = {spec.raw_table for spec in load_topics(settings.topics_file) if spec.sink}
    assert loaded
    assert sink_topic_tables(project) == loaded


def test_source_health_names_no_raw_table_by_hand(project):
    sql = "".join(p.read_text() for p in (project / "models").rglob("*source_health*.sql"))
    raw_tables = sink_topic_tables(project)
    assert raw_tables and not [table for table in raw_tables if table in sql]


# --- and each rule catches a project that breaks it ---------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_rules_report_each_broken_layer_convention(tmp_path):
    project = _write(
        tmp_path,
        {
            "models/staging/shop/stg_shop__orders.sql": "select * from {{ source('shop', 'o') }}",
            "models/staging/shop/_shop__models.yml": "models: [{name: stg_shop__orders}]",
            "models/intermediate/_intermediate__models.yml": "models: []",
            "models/intermediate/sales/int_sales_orders.sql": "select 1",
            "models/intermediate/sales/int_sales__totals.sql": "select 1",
            "models/marts/ops/fct_health.sql": "select * from {{ source('shop', 'o') }}",
            "models/marts/ops/_ops__models.yml": "models: [{name: fct_health}]",
            "models/marts/ops/_ops_more__models.yml": "models: []",
            "models/marts/ops/_ops__sources.yml": "sources: [{name: shop, tables: [{name: o}]}]",
            "macros/a.sql": "{% macro documented(x, y=1) %}{% endmacro %}"
            "{%- macro secret() -%}{% endmacro %}",
            "macros/_macros.yml": "macros: [{name: documented, description: d,"
            " arguments: [{name: x}]}]",
        },
    )
    assert source_calls_outside_staging(project) == [
        "models/marts/ops/fct_health.sql calls source(): only staging reads sources"
    ]
    assert [p.split(":")[0] for p in misnamed_models(project)] == [
        "models/intermediate/sales/int_sales_orders.sql"
    ]
    problems = "\n".join(folder_property_files(project))
    assert "models/staging/shop: expected _shop__sources.yml, found []" in problems
    assert "models/intermediate/sales: expected exactly _sales__models.yml, found none" in problems
    assert "models/marts/ops: expected exactly _ops__models.yml" in problems
    assert "models/marts/ops/_ops__sources.yml declares sources outside staging" in problems
    assert "models/intermediate/_intermediate__models.yml describes models outside" in problems
    assert undocumented_macros(project) == [
        "macros/a.sql: document documented's arguments ['x', 'y']",
        "macros/a.sql: macro secret has no description",
    ]
