"""The Superset bundle in superset/ holds together on the files alone (no Superset, no DuckDB).

Every UUID link resolves (chart -> dataset -> database, dashboard layout and native filters ->
chart and dataset); every dataset is a contracted dbt mart and lists exactly its columns; every
column a chart or filter names exists; the connection is the templated, read-only serving path; and
the committed files are already in the normalized form `supersetctl export` writes, so a re-export
without changes gives no diff.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "superset"
MARTS = REPO / "dbt_project" / "models" / "marts"


def _load_assets_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "uf_superset_assets", REPO / "infra" / "superset" / "assets.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


assets = _load_assets_module()


def _load(folder: str) -> dict[str, dict[str, Any]]:
    """{relative path: parsed yaml} of one asset folder."""
    return {
        path.relative_to(BUNDLE).as_posix(): yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted((BUNDLE / folder).rglob("*.yaml"))
    }


DATABASES = _load("databases")
DATASETS = _load("datasets")
CHARTS = _load("charts")
DASHBOARDS = _load("dashboards")


def _dbt_marts() -> dict[str, dict[str, Any]]:
    marts: dict[str, dict[str, Any]] = {}
    for yml in MARTS.glob("*/_*__models.yml"):
        for model in (yaml.safe_load(yml.read_text(encoding="utf-8")) or {}).get("models", []):
            marts[model["name"]] = model
    return marts


def _by_uuid(assets_: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(config["uuid"]): config for config in assets_.values()}


def _chart_nodes(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        node
        for node in dashboard["position"].values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    ]


def _chart_columns(params: dict[str, Any]) -> set[str]:
    """Physical columns a chart's form data names (SQL metrics are checked by Superset itself)."""
    columns = set()
    for key in ("x_axis", "entity", "series"):
        if isinstance(params.get(key), str):
            columns.add(params[key])
    for key in ("groupby", "all_columns", "columns"):
        columns.update(c for c in params.get(key) or [] if isinstance(c, str))
    for order in params.get("order_by_cols") or []:
        columns.add(yaml.safe_load(order)[0])
    for adhoc in params.get("adhoc_filters") or []:
        if adhoc.get("expressionType") == "SIMPLE":
            columns.add(adhoc["subject"])
    return columns


def test_bundle_has_assets_metadata_and_every_kind_of_asset() -> None:
    metadata = yaml.safe_load((BUNDLE / "metadata.yaml").read_text(encoding="utf-8"))
    assert metadata == {"type": "assets", "version": "1.0.0"}
    assert DATABASES and DATASETS and CHARTS and DASHBOARDS


def test_every_uuid_is_unique_across_the_bundle() -> None:
    uuids = [
        str(config["uuid"])
        for folder in (DATABASES, DATASETS, CHARTS, DASHBOARDS)
        for config in folder.values()
    ]
    assert len(uuids) == len(set(uuids))


def test_database_opens_the_templated_serving_path_read_only() -> None:
    (database,) = DATABASES.values()
    assert database["sqlalchemy_uri"] == "duckdb:///${UF_SERVING_PATH}"
    assert database["extra"]["engine_params"]["connect_args"]["read_only"] is True
    assert database["allow_dml"] is False
    assert "password" not in database


def test_every_dataset_links_to_a_database_in_the_bundle() -> None:
    databases = _by_uuid(DATABASES)
    for path, dataset in DATASETS.items():
        assert str(dataset["database_uuid"]) in databases, path
        database = databases[str(dataset["database_uuid"])]
        assert path.split("/")[1] == assets.file_stem(database["database_name"]), path


def test_every_dataset_is_a_contracted_dbt_mart_with_its_columns() -> None:
    marts = _dbt_marts()
    for path, dataset in DATASETS.items():
        name = dataset["table_name"]
        assert dataset["schema"] == "marts", f"{path}: datasets read only the marts schema"
        assert dataset["sql"] is None, f"{path}: a virtual dataset would bypass the mart contract"
        assert name in marts, f"{path}: {name} is not a mart in dbt_project/models/marts"
        config = marts[name].get("config") or {}
        assert (config.get("contract") or {}).get("enforced") is True, (
            f"{path}: marts.{name} must have an enforced contract before Superset reads it"
        )
        dbt_columns = {c["name"] for c in marts[name]["columns"]}
        dataset_columns = {c["column_name"] for c in dataset["columns"]}
        assert dataset_columns == dbt_columns, f"{path}: columns differ from the dbt contract"


def test_every_chart_links_to_a_dataset_and_names_only_its_columns() -> None:
    datasets = _by_uuid(DATASETS)
    for path, chart in CHARTS.items():
        assert str(chart["dataset_uuid"]) in datasets, path
        dataset = datasets[str(chart["dataset_uuid"])]
        columns = {c["column_name"] for c in dataset["columns"]}
        missing = _chart_columns(chart["params"]) - columns
        assert not missing, f"{path}: {sorted(missing)} not in {dataset['table_name']}"
        assert chart["params"]["viz_type"] == chart["viz_type"], path


def test_every_dashboard_chart_and_filter_resolves() -> None:
    charts = _by_uuid(CHARTS)
    datasets = _by_uuid(DATASETS)
    for path, dashboard in DASHBOARDS.items():
        nodes = _chart_nodes(dashboard)
        assert nodes, f"{path}: no charts"
        for node in nodes:
            meta = node["meta"]
            assert meta["uuid"] in charts, f"{path}: {node['id']} -> unknown chart {meta['uuid']}"
            assert isinstance(meta["chartId"], int), f"{path}: {node['id']} needs a chartId"
        chart_ids = [node["meta"]["chartId"] for node in nodes]
        assert sorted(chart_ids) == list(range(1, len(nodes) + 1)), f"{path}: chart ids not 1..n"
        for native_filter in dashboard["metadata"].get("native_filter_configuration", []):
            for target in native_filter["targets"]:
                assert "datasetId" not in target, f"{path}: filters name datasets by datasetUuid"
                dataset = datasets.get(str(target["datasetUuid"]))
                assert dataset is not None, (
                    f"{path}: filter {native_filter['name']} -> unknown dataset"
                )
                columns = {c["column_name"] for c in dataset["columns"]}
                assert target["column"]["name"] in columns, f"{path}: {native_filter['name']}"


def test_every_chart_is_on_a_dashboard() -> None:
    placed = {node["meta"]["uuid"] for d in DASHBOARDS.values() for node in _chart_nodes(d)}
    orphans = sorted(p for p, chart in CHARTS.items() if str(chart["uuid"]) not in placed)
    assert not orphans


def test_plan_and_pipeline_health_dashboards_exist() -> None:
    titles = {d["dashboard_title"] for d in DASHBOARDS.values()}
    assert {"Strategic Plan 2022-2025", "Pipeline health"} <= titles
    assert len(titles) == len(DASHBOARDS)


def test_plan_gauges_measure_against_the_plans_targets() -> None:
    gauges = {
        c["slice_name"]: c["params"] for c in CHARTS.values() if c["viz_type"] == "gauge_chart"
    }
    targets = {
        re.search(r"target (\d+)", name).group(1): p["max_val"] for name, p in gauges.items()
    }
    assert targets == {"28": 28_000_000, "24": 24, "10": 10}


def test_committed_files_are_already_normalized() -> None:
    files = assets.read_bundle(BUNDLE)
    as_exported = {f"{assets.BUNDLE_ROOT}/{name}": text for name, text in files.items()}
    assert assets.normalize_export(as_exported, serving_path=None) == files


def test_file_names_follow_the_asset_names() -> None:
    for path, chart in CHARTS.items():
        assert path == f"charts/{assets.file_stem(chart['slice_name'])}.yaml"
    for path, dashboard in DASHBOARDS.items():
        assert path == f"dashboards/{assets.file_stem(dashboard['dashboard_title'])}.yaml"


def test_template_fills_the_serving_path_only_in_databases() -> None:
    files = assets.read_bundle(BUNDLE)
    filled = assets.template(files, {"UF_SERVING_PATH": "/srv/uf/serving.duckdb"})
    (name,) = [n for n in filled if n.startswith("databases/")]
    assert "sqlalchemy_uri: duckdb:////srv/uf/serving.duckdb" in filled[name]
    assert {n: t for n, t in filled.items() if n != name} == {
        n: t for n, t in files.items() if n != name
    }


def test_template_names_the_file_when_a_variable_is_missing() -> None:
    files = {"databases/x.yaml": "sqlalchemy_uri: duckdb:///${UF_SERVING_PATH}\n"}
    with pytest.raises(assets.BundleError, match=r"superset/databases/x.yaml.*UF_SERVING_PATH"):
        assets.template(files, {})


def test_export_normalization_renumbers_chart_ids_and_templates_the_path() -> None:
    dashboard = {
        "dashboard_title": "D",
        "uuid": "u",
        "position": {
            "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
            "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": ["R"]},
            "R": {"type": "ROW", "id": "R", "children": ["C1", "C2"]},
            "C1": {"type": "CHART", "id": "C1", "meta": {"chartId": 41, "uuid": "a"}},
            "C2": {"type": "CHART", "id": "C2", "meta": {"chartId": 7, "uuid": "b"}},
        },
        "metadata": {
            "native_filter_configuration": [
                {
                    "scope": {"excluded": [7]},
                    "chartsInScope": [41, 7],
                    "targets": [{"datasetId": 3}],
                }
            ],
            "chart_configuration": {"41": {"id": 41, "crossFilters": {"chartsInScope": [7]}}},
        },
    }
    database = {
        "database_name": "UrbanFlow serving",
        "uuid": "d",
        "sqlalchemy_uri": "duckdb:////v/serving.duckdb",
    }
    exported = {
        "assets_export/metadata.yaml": yaml.safe_dump(
            {"version": "1.0.0", "type": "assets", "timestamp": "2026-01-01T00:00:00"}
        ),
        "assets_export/dashboards/D_12.yaml": yaml.safe_dump(dashboard),
        "assets_export/databases/UrbanFlow_serving.yaml": yaml.safe_dump(database),
    }
    files = assets.normalize_export(exported, serving_path="/v/serving.duckdb")
    assert set(files) == {"metadata.yaml", "dashboards/D.yaml", "databases/UrbanFlow_serving.yaml"}
    assert "timestamp" not in files["metadata.yaml"]
    out = yaml.safe_load(files["dashboards/D.yaml"])
    assert out["position"]["C1"]["meta"]["chartId"] == 1
    assert out["position"]["C2"]["meta"]["chartId"] == 2
    native = out["metadata"]["native_filter_configuration"][0]
    assert native["scope"]["excluded"] == [2] and native["chartsInScope"] == [1, 2]
    assert native["targets"] == [{}]
    assert out["metadata"]["chart_configuration"] == {
        "1": {"id": 1, "crossFilters": {"chartsInScope": [2]}}
    }
    assert (
        yaml.safe_load(files["databases/UrbanFlow_serving.yaml"])["sqlalchemy_uri"]
        == "duckdb:///${UF_SERVING_PATH}"
    )


EXPOSURES = REPO / "dbt_project" / "models" / "marts" / "_exposures.yml"
ROLES = assets.read_roles(BUNDLE)
REF = re.compile(r"^ref\('([a-z0-9_]+)'\)$")


def _marts_read_by(dashboard: dict[str, Any]) -> set[str]:
    charts = _by_uuid(CHARTS)
    datasets = _by_uuid(DATASETS)
    return {
        datasets[str(charts[node["meta"]["uuid"]]["dataset_uuid"])]["table_name"]
        for node in _chart_nodes(dashboard)
    }


def test_every_dashboard_has_an_exposure_depending_on_the_marts_its_charts_read() -> None:
    exposures = yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))["exposures"]
    by_url = {e["url"]: e for e in exposures}
    assert len(by_url) == len(exposures) == len(DASHBOARDS)
    for path, dashboard in DASHBOARDS.items():
        url = f"http://127.0.0.1:8088/superset/dashboard/{dashboard['slug']}/"
        assert url in by_url, f"{path}: no exposure with url {url} in {EXPOSURES.name}"
        exposure = by_url[url]
        assert exposure["type"] == "dashboard" and exposure["label"] == dashboard["dashboard_title"]
        refs = {REF.match(d).group(1) for d in exposure["depends_on"]}
        assert refs == _marts_read_by(dashboard), f"{path}: exposure depends_on != marts read"


def test_exposures_are_declared_in_one_place() -> None:
    models = REPO / "dbt_project" / "models"
    declaring = sorted(
        p.relative_to(models).as_posix()
        for p in models.rglob("*.yml")
        if "exposures" in (yaml.safe_load(p.read_text(encoding="utf-8")) or {})
    )
    assert declaring == ["marts/_exposures.yml"]


def test_roles_file_names_only_dashboards_and_datasets_of_the_bundle() -> None:
    slugs = sorted(d["slug"] for d in DASHBOARDS.values())
    allowed = assets.dashboard_roles(ROLES, slugs)
    assert allowed.pop("my-feeds") == ["Analyst", "Partner"]
    assert allowed.pop("strategic-plan") == ["Analyst", "Partner"]
    assert all(names == ["Analyst"] for names in allowed.values()), allowed
    tables = {d["table_name"] for d in DATASETS.values()}
    for role in ROLES["roles"]:
        assert set(role.get("datasets") or []) <= tables, role["name"]
    rls = ROLES["row_level_security"]
    assert set(rls["partner_filter"]["datasets"]) | set(rls["shared_datasets"]) <= tables


def test_partners_read_only_datasets_filtered_per_partner_or_shared_without_partner_rows() -> None:
    """A dataset a partner may read is filtered on the RLS column, or is shared: it then has no
    partner column at all (programme-wide figures), else it would show every partner's rows."""
    rls = ROLES["row_level_security"]
    column = rls["partner_filter"]["column"]
    filtered, shared = set(rls["partner_filter"]["datasets"]), set(rls["shared_datasets"])
    assert not filtered & shared
    (partner,) = [r for r in ROLES["roles"] if r["name"] == "Partner"]
    partner_tables = set(partner["datasets"])
    assert partner_tables == filtered | shared
    for dataset in DATASETS.values():
        names = {c["column_name"] for c in dataset["columns"]}
        if dataset["table_name"] in filtered:
            assert column in names, dataset["table_name"]
        if dataset["table_name"] in shared:
            assert not {column, "partner_code", "source_urn", "reporting_org"} & names, dataset[
                "table_name"
            ]
    for slug in partner["dashboards"]:
        (dashboard,) = [d for d in DASHBOARDS.values() if d["slug"] == slug]
        assert _marts_read_by(dashboard) <= partner_tables, slug


def test_the_base_filter_covers_every_dataset_but_the_shared_ones() -> None:
    tables = sorted(d["table_name"] for d in DATASETS.values())
    covered = assets.base_filter_tables(ROLES, tables)
    assert set(covered) == set(tables) - set(ROLES["row_level_security"]["shared_datasets"])
    assert set(ROLES["row_level_security"]["partner_filter"]["datasets"]) <= set(covered)


def test_a_roles_file_sharing_a_partner_dataset_is_an_error(tmp_path: Path) -> None:
    broken = {**ROLES, "row_level_security": {**ROLES["row_level_security"]}}
    broken["row_level_security"]["shared_datasets"] = ["fct_partner_feeds"]
    (tmp_path / "roles.yml").write_text(yaml.safe_dump(broken))
    with pytest.raises(assets.BundleError, match="shared_datasets"):
        assets.read_roles(tmp_path)


def test_base_filter_denies_by_default_and_exempts_only_admin_and_analyst() -> None:
    rls = ROLES["row_level_security"]
    assert rls["base_filter"]["clause"] == "1=0"
    assert set(rls["base_filter"]["exempt_roles"]) == {"Admin", "Analyst"}


def test_partner_clause_and_role_follow_the_slug_and_refuse_a_bad_one() -> None:
    assert assets.partner_clause(ROLES, "habitat-asia") == "partner_slug = 'habitat-asia'"
    assert assets.partner_role_name(ROLES, "habitat-asia") == "Partner habitat-asia"
    for bad in ("x' or '1'='1", "Habitat", "a", "-lead"):
        with pytest.raises(assets.BundleError, match="partner slug"):
            assets.partner_clause(ROLES, bad)


def test_roles_file_naming_an_unknown_dashboard_is_an_error() -> None:
    config = {"roles": [{"name": "R", "dashboards": ["nope"]}]}
    with pytest.raises(assets.BundleError, match="names dashboard 'nope'"):
        assets.dashboard_roles(config, ["strategic-plan"])
