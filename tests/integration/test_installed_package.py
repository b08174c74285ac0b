"""Installed like production: the wheel, not the source tree, runs the pipeline.

The package is built into a wheel and installed (not editable) into a throwaway venv. Its
dependencies are the project venv's, reached through a `.pth` line: a plain path line, so the
project venv's own `.pth` files (the editable install of this checkout among them) are not run
and `import connectors` can only find the wheel. The CLI then runs from a folder outside the
repository with `UF_HOME` pointing at a read-only copy of exactly what `infra/docker/Dockerfile`
copies into `/opt/urbanflow`, against a fresh warehouse, as the image runs it: `source list`,
`topics apply`, a source on a bundled sample, the sink, `refresh` (dbt) and `publish` (the gate).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from connectors.settings import SOURCE_TREE as REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UV = REPO_ROOT / ".tools" / "bin" / "uv"
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"
IMAGE_HOME = "/opt/urbanflow"
RAW_TABLE = "raw.stats_sdmx_observation_v1"
SENT = re.compile(r"^sdmx: sent ([\d,]+) events", re.MULTILINE)


def image_copies(target: str = "app") -> tuple[list[str], list[str]]:
    """What the image's stage copies: (files for the wheel's build, files under UF_HOME)."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    [stage] = [s for s in re.split(r"^(?=FROM )", text, flags=re.MULTILINE) if f" AS {target}" in s]
    build, home = [], []
    for sources, dest in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+(\S+)$", stage, re.MULTILINE):
        if dest.startswith("/tmp/src"):
            build += sources.split()
        elif dest.startswith(f"{IMAGE_HOME}/"):
            home.append(dest.removeprefix(f"{IMAGE_HOME}/"))
    return build, home


def copy_into(folder: Path, names: list[str]) -> None:
    for name in names:
        source, target = REPO_ROOT / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "target", "logs", "dbt_packages")
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)


def make_read_only(folder: Path) -> None:
    """The image's UF_HOME belongs to root: nothing may write there at run time."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def uv(*args: str, cwd: Path | None = None) -> None:
    """uv from the Makefile's tools; offline first (its cache holds what `make install` used)."""
    for mode in (["--offline"], []):
        result = subprocess.run(
            [str(UV), *args, *mode], cwd=cwd, capture_output=True, text=True, timeout=600
        )
        if result.returncode == 0:
            return
    raise AssertionError(f"uv {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """A venv holding the built wheel, a read-only UF_HOME, a working folder: none in the repo."""
    base = tmp_path_factory.mktemp("installed")
    build_files, home_files = image_copies()
    assert {"pyproject.toml", "README.md", "connectors"} <= set(build_files)
    assert {"infra/kafka/topics.yml", "dbt_project", "quality/expectations.yml", "sample_data"} <= (
        set(home_files)
    )

    source = base / "src"
    copy_into(source, build_files)
    uv(
        "build",
        "-q",
        "--wheel",
        "--python",
        sys.executable,
        "--out-dir",
        str(base / "dist"),
        cwd=source,
    )
    [wheel] = (base / "dist").glob("urbanflow-*.whl")

    venv = base / "venv"
    uv("venv", "-q", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    project_libs = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(purelib) / "_urbanflow_test_deps.pth").write_text("\n".join(project_libs) + "\n")
    uv("pip", "install", "-q", "--no-deps", "--python", str(python), str(wheel))

    home = base / "home"
    copy_into(home, home_files)
    make_read_only(home)
    work = base / "work"
    work.mkdir()
    yield {"venv": venv, "home": home, "work": work, "var": base / "var", "purelib": Path(purelib)}
    for path in [home, *home.rglob("*")]:  # let pytest clean up
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture(scope="module")
def image_env(installed, kafka_bootstrap) -> dict[str, str]:
    """The image's environment: UF_HOME and UF_VAR_DIR only (no test-run UF_ paths leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UF_", "PYTHON", "VIRTUAL"))}
    var = installed["var"]
    bin_dir = str(installed["venv"] / "bin")
    path = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != REPO_ROOT / ".venv/bin"]
    return {
        **env,
        "PATH": os.pathsep.join([bin_dir, *path]),
        "VIRTUAL_ENV": str(installed["venv"]),
        "UF_HOME": str(installed["home"]),
        "UF_VAR_DIR": str(var),
        "UF_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "UF_SINK_GROUP": f"test-installed-{uuid.uuid4().hex[:8]}",
        "DBT_TARGET_PATH": str(var / "dbt" / "target"),
        "DBT_LOG_PATH": str(var / "dbt" / "logs"),
        "GX_ANALYTICS_ENABLED": "false",
        "COLUMNS": "200",
    }


def urbanflow(installed, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(installed["venv"] / "bin" / "urbanflow"), *args],
        cwd=installed["work"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


def test_the_venv_imports_the_wheel_not_the_source_tree(installed, image_env):
    result = subprocess.run(
        [
            str(installed["venv"] / "bin" / "python"),
            "-c",
            "import connectors, connectors.cli, connectors.settings as s; "
            "print(connectors.__file__); print(s.Settings.from_env().home)",
        ],
        cwd=installed["work"],
        env=image_env,
        capture_output=True,
        text=True,
    )
    module, home = ok(result).split()

    assert Path(module).is_relative_to(installed["purelib"])
    assert not Path(module).is_relative_to(REPO_ROOT)
    assert Path(home) == installed["home"]


def test_installed_cli_runs_source_sink_dbt_and_gate_from_uf_home(installed, image_env):
    var = installed["var"]
    warehouse = var / "warehouse.duckdb"
    sample = installed["home"] / "sample_data" / "sdmx"

    listed = ok(urbanflow(installed, image_env, "source", "list"))
    ok(urbanflow(installed, image_env, "topics", "apply"))
    first = ok(urbanflow(installed, image_env, "source", "run", "sdmx", str(sample)))
    again = ok(urbanflow(installed, image_env, "source", "run", "sdmx", str(sample)))
    loaded = ok(urbanflow(installed, image_env, "sink", "run", "--until-caught-up"))
    ok(urbanflow(installed, image_env, "refresh"))
    published = urbanflow(installed, image_env, "publish")

    for name in ("sdmx", "worldbank", "unsdg", "iati", "hxl", "gdacs", "utilities"):
        assert re.search(rf"^\W*{name}\b", listed, re.MULTILINE), name
    sent = int(SENT.search(first)[1].replace(",", ""))
    assert sent > 0
    assert SENT.search(again)[1] == "0"  # state was saved under UF_VAR_DIR, not in the package
    assert (var / "state" / "sdmx.json").is_file()
    assert f"-> {warehouse}" in " ".join(loaded.split())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # the shared test broker may hold the same sample's events from other tests: same ids
        raw_events = con.execute(f"select count(distinct event_id) from {RAW_TABLE}").fetchone()[0]
        mart_rows = con.execute("select count(*) from marts.fct_city_indicator").fetchone()[0]
    assert raw_events >= sent
    assert mart_rows > 0
    assert re.search(r"^published: \d+/\d+ expectations passed", ok(published), re.MULTILINE)
    serving = var / "serving.duckdb"
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_city_indicator").fetchone()[0] == (
            mart_rows
        )
    assert (var / "quality" / "data_docs" / "index.html").is_file()
    assert not list(installed["home"].rglob("target")), "nothing may write into UF_HOME"
