"""The docs name only what exists: make targets, `urbanflow` commands, files inside the repository.

Rules, checked as data (no network, no broker):

- Commands are read from code only: inline code spans and fenced code blocks of README.md,
  docs/*.md and quality/README.md. In code, `make <target>` must be a target of the Makefile, and
  `urbanflow <command ...>` must name an existing command path of the CLI (a group must be followed
  by one of its commands; placeholders, arguments and options after a leaf command are free;
  `a|b` means both `a` and `b`).
- Links stay inside the repository. In every markdown file of the repository, a link
  (`[text](target)`, `[text]: target`, `<scheme://...>`) is either an anchor of the same file
  (`#heading`, which must exist) or a relative path to an existing file or folder that resolves
  inside the repository. `http(s)://`, `mailto:` and absolute paths are refused as links; a
  standard or a site may be named in plain text or in a code span (for example an example URL in
  a command), where it is text, not a link.
- Files named in code (README.md, docs/*.md, quality/README.md) exist: a path that starts with a
  top-level folder of the repository (`connectors/...`, `tests/...`) must be there, unless it is
  a pattern (followed by `<name>`, `{...}` or `*`).
- Completeness: the README's make-target table names every documented Makefile target (those with
  a `## help` text), and its CLI table names every leaf command of the CLI.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from connectors.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
MAKEFILE = REPO_ROOT / "Makefile"
COMMAND_DOCS = [README, *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "quality/README.md"]
# Not documentation of this repository: tools' and caches' own files.
SKIPPED_DIRS = {".venv", ".tools", "var", "node_modules", "target", "dbt_packages", "libs", "logs"}

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+(?:[A-Z_]+=\S*\s+)*([a-z][a-z0-9-]*)", re.MULTILINE)
URBANFLOW = re.compile(r"(?:^|[\s/;&|(])urbanflow((?:[ \t]+[^\s`;&)]+)+)", re.MULTILINE)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
TOP_LEVEL = "bench|connectors|dags|dbt_project|docs|infra|quality|sample_data|superset|tests"
REPO_PATH = re.compile(rf"(?<![\w/.$-])((?:{TOP_LEVEL})/[\w./-]*)(?![\w./<{{*-])")
AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^>\s]+)>", re.IGNORECASE)


def code_of(text: str) -> list[str]:
    """The fenced blocks and inline code spans of a markdown text."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    return blocks + [match.group(2) for match in CODE_SPAN.finditer(prose)]


def prose_of(text: str) -> str:
    """The text outside code, where a link is a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


@cache
def make_targets() -> frozenset[str]:
    text = MAKEFILE.read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE))


def documented_make_targets() -> set[str]:
    text = MAKEFILE.read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):.*##", text, re.MULTILINE))


@cache
def cli() -> Any:
    """The click command typer builds from the app (typer vendors click: groups have `commands`)."""
    return typer.main.get_command(app)


def is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def leaf_commands(group: Any, prefix: tuple[str, ...] = ()) -> set[str]:
    found: set[str] = set()
    for name, command in group.commands.items():
        if is_group(command):
            found |= leaf_commands(command, (*prefix, name))
        else:
            found.add(" ".join((*prefix, name)))
    return found


def resolve(words: list[str]) -> tuple[list[str], str | None]:
    """Walk `urbanflow <words>` down the CLI: the leaf command paths it names, and the first word
    at fault (None when it names existing commands)."""
    paths: list[str] = []
    frontier: list[tuple[tuple[str, ...], Any]] = [((), cli())]
    for word in words:
        if not any(is_group(command) for _, command in frontier):
            break  # arguments and options of a leaf command are free
        if word.startswith(("-", "<", "[")):
            return paths, "(a group alone)"
        step = []
        for path, command in frontier:
            for alternative in word.split("|"):
                if alternative not in command.commands:
                    return paths, word
                step.append(((*path, alternative), command.commands[alternative]))
        frontier = step
    if not words or any(is_group(command) for _, command in frontier):
        return paths, "(a group alone)"
    return [" ".join(path) for path, _ in frontier], None


def unknown_command(words: list[str]) -> str | None:
    return resolve(words)[1]


def markdown_files() -> list[Path]:
    return sorted(
        path
        for path in REPO_ROOT.rglob("*.md")
        if not any(
            part in SKIPPED_DIRS or part.startswith(".")
            for part in path.relative_to(REPO_ROOT).parts[:-1]
        )
    )


def github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def anchors_of(text: str) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", text), re.MULTILINE)
    return {github_anchor(re.sub(r"[`*_]", "", heading)) for heading in headings}


def link_problem(source: Path, target: str) -> str | None:
    if target.startswith("#"):
        anchors = anchors_of(source.read_text(encoding="utf-8"))
        return None if target[1:] in anchors else f"no heading for anchor {target}"
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
        return "links outside the repository (name the site in plain text instead)"
    if target.startswith("/"):
        return "absolute path"
    path = target.split("#", 1)[0]
    resolved = (source.parent / path).resolve()
    if not resolved.is_relative_to(REPO_ROOT):
        return "resolves outside the repository"
    if not resolved.exists():
        return "no such file"
    return None


# -- make targets and CLI commands named in the docs ----------------------------------------------
def test_the_command_docs_exist():
    assert [path for path in COMMAND_DOCS if not path.is_file()] == []


def test_the_scanners_find_what_the_readme_names():
    """Guards the checks below against silently matching nothing."""
    code = "\n".join(code_of(README.read_text(encoding="utf-8")))
    assert {"demo", "test", "lint", "format"} <= set(MAKE.findall(code))
    assert "source run sdmx sample_data/sdmx" in "\n".join(
        m.strip() for m in URBANFLOW.findall(code)
    )
    assert unknown_command(["source", "check"]) is None
    assert unknown_command(["check"]) == "check"
    assert unknown_command(["source"]) == "(a group alone)"


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_make_target_named_in_the_docs_exists(doc: Path):
    code = "\n".join(code_of(doc.read_text(encoding="utf-8")))
    assert set(MAKE.findall(code)) - make_targets() == set()


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_urbanflow_command_named_in_the_docs_exists(doc: Path):
    unknown = {}
    for code in code_of(doc.read_text(encoding="utf-8")):
        for words in URBANFLOW.findall(code):
            if (fault := unknown_command(words.split())) is not None:
                unknown[f"urbanflow{words}".strip()] = fault
    assert unknown == {}


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_repository_path_named_in_the_docs_exists(doc: Path):
    named = {
        path.rstrip(".")
        for code in code_of(doc.read_text(encoding="utf-8"))
        for path in REPO_PATH.findall(code)
    }
    assert {path for path in named if not (REPO_ROOT / path).exists()} == set()


def test_readme_make_table_names_every_documented_target():
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line[:3] == "| `"]
    named = set(MAKE.findall("\n".join(code for row in rows for code in code_of(row))))
    assert documented_make_targets() - named == set()


def test_readme_cli_table_names_every_leaf_command():
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## The `urbanflow` CLI\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README has no '## The `urbanflow` CLI' section"
    named = {
        path
        for code in code_of(section.group(1))
        for words in URBANFLOW.findall(code)
        for path in resolve(words.split())[0]
    }
    assert leaf_commands(cli()) - named == set()


def test_gate_and_source_check_have_names_that_cannot_be_confused():
    commands = leaf_commands(cli())
    assert {"gate", "publish", "source check"} <= commands
    assert "check" not in commands


# -- links -----------------------------------------------------------------------------------------
def test_markdown_scan_covers_the_docs():
    found = {path.relative_to(REPO_ROOT).as_posix() for path in markdown_files()}
    assert {"README.md", "docs/connectors.md", "quality/README.md"} <= found


def test_link_rule_refuses_outside_targets_and_accepts_repo_files():
    assert link_problem(README, "https://example.org") is not None
    assert link_problem(README, "../outside.md") is not None
    assert link_problem(README, "/etc/hosts") is not None
    assert link_problem(README, "docs/connectors.md") is None
    assert link_problem(README, "#configuration") is None
    assert link_problem(README, "#no-such-heading") is not None


@pytest.mark.parametrize(
    "doc", markdown_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)) if p else ""
)
def test_every_markdown_link_stays_inside_the_repository(doc: Path):
    prose = prose_of(doc.read_text(encoding="utf-8"))
    targets = [
        *INLINE_LINK.findall(prose),
        *REFERENCE_LINK.findall(prose),
        *AUTOLINK.findall(prose),
    ]
    problems = {t: p for t in targets if t and (p := link_problem(doc, t)) is not None}
    assert problems == {}
