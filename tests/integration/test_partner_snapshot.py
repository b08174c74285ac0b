"""`snap_partners` keeps the history of `ref_partners` (SCD2): run against a copy of the dbt project
whose seed is edited between two `dbt snapshot` runs, never the committed seed."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import duckdb
import pytest

from connectors.settings import Settings
from connectors.transform import run_dbt

pytestmark = pytest.mark.integration
RENAMED = ("habitat-asia", "Habitat Asia Collective", "Habitat Asia Alliance")


def _rename_partner(seed: Path, code: str, old: str, new: str) -> None:
    with seed.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["partner_name"] for r in rows if r["partner_code"] == code] == [old]
    for row in rows:
        if row["partner_code"] == code:
            row["partner_name"] = new
    with seed.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_a_changed_partner_row_closes_its_old_version_and_opens_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = Settings.from_env()
    project = tmp_path / "dbt_project"
    shutil.copytree(base.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    settings = dataclasses.replace(
        base,
        var_dir=tmp_path,
        warehouse_path=tmp_path / "warehouse.duckdb",
        dbt_project_dir=project,
    )

    def seed_snapshot_and_publish() -> None:
        run_dbt(settings, ["seed", "--select", "ref_partners", "ref_iati_organisation_types"])
        run_dbt(settings, ["snapshot", "--select", "snap_partners"])
        run_dbt(settings, ["run", "--select", "dim_partner"])

    seed_snapshot_and_publish()
    code, old_name, new_name = RENAMED
    _rename_partner(project / "seeds" / "ref_partners.csv", code, old_name, new_name)
    seed_snapshot_and_publish()

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        history = con.execute(
            """select partner_name, dbt_valid_from, dbt_valid_to from snapshots.snap_partners
               where partner_code = ? order by dbt_valid_from""",
            [code],
        ).fetchall()
        others_open = con.execute(
            """select count(*), count(dbt_valid_to) from snapshots.snap_partners
               where partner_code <> ?""",
            [code],
        ).fetchone()
        current = con.execute(
            "select partner_code, partner_name from marts.dim_partner where is_current order by 1"
        ).fetchall()
        versions = con.execute(
            """select partner_name, is_current, valid_to is null from marts.dim_partner
               where partner_code = ? order by valid_from""",
            [code],
        ).fetchall()

    (old, old_from, old_to), (new, new_from, new_to) = history
    assert (old, new) == (old_name, new_name)
    assert old_to is not None and old_to == new_from and old_from < new_from
    assert new_to is None
    assert others_open == (3, 0)
    assert len(current) == 4 and (code, new_name) in current
    assert versions == [(old_name, False, False), (new_name, True, True)]
