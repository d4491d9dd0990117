"""Docs that can't drift: the CLI reference is generated, every command and option is documented,
docs/schema.md describes the schema the code creates, and the code is formatted and lint-clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import click
import pytest
import sqlite_utils

from datasette_imagecluster.library.schema import ensure_schema
from importer.cli import cli

from .conftest import ROOT

DOCS = ROOT / "docs"


def test_the_cli_reference_is_current():
    """docs/cli.md is what cog generates from every command's --help (regenerate: cog -r docs/cli.md)."""
    from cogapp import Cog

    assert Cog().main(["cog", "--check", str(DOCS / "cli.md")]) == 0, "run: cog -r docs/cli.md"


def test_the_readme_module_map_is_current():
    """The README's module map is every module's first docstring line, as cog generates it (cog -r README.md)."""
    from cogapp import Cog

    assert Cog().main(["cog", "--check", str(ROOT / "README.md")]) == 0, "run: cog -r README.md"
    listed = (ROOT / "README.md").read_text()
    for package in ("importer", "datasette_imagecluster"):
        for path in (ROOT / package).rglob("*.py"):
            shown = str(path.relative_to(ROOT))
            if path.name == "__init__.py" and shown.count("/") > 1:
                shown = shown[: -len("__init__.py")]
            assert f"\n{shown} " in listed, f"{shown} is missing from the README's module map"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_and_option_is_documented(name):
    command = cli.commands[name]
    reference = (DOCS / "cli.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert f"## imagecluster {name}\n" in reference
    assert f"imagecluster {name}" in readme, f"the README never shows 'imagecluster {name}'"
    assert command.help and command.help.strip(), f"{name} has no docstring for --help"
    section = reference.split(f"## imagecluster {name}\n", 1)[1].split("\n## ", 1)[0]
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]} has no help text"
            for opt in param.opts:
                assert opt in section, f"{name} {opt} is missing from docs/cli.md"


def _sections(text: str) -> dict[str, str]:
    """Each '## ' section of a Markdown page, by its heading."""
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


def test_the_schema_document_matches_the_schema(tmp_path):
    db = sqlite_utils.Database(tmp_path / "schema.db")
    ensure_schema(db)
    sections = _sections((DOCS / "schema.md").read_text())
    for table in db.table_names():
        mine = [text for heading, text in sections.items() if f"`{table}`" in heading]
        assert mine, f"docs/schema.md has no section for the table {table}"
        for column in db[table].columns_dict:
            assert any(f"`{column}`" in text for text in mine), f"{table}.{column} is not in docs/schema.md"
    version = db.execute("pragma user_version").fetchone()[0]
    assert f"(schema version {version})" in (DOCS / "schema.md").read_text()


def _ruff(*args: str) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
    if ruff is None:
        if os.environ.get("CI"):
            pytest.fail("ruff is not installed: it comes with pip install -e '.[test]'")
        pytest.skip("ruff not installed (pip install -e '.[test]')")
    return subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)


def test_the_code_is_formatted():
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, "run: ruff format .\n" + result.stdout + result.stderr


def test_the_code_is_lint_clean():
    result = _ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
