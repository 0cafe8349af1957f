"""The reference in docs/reference/ is what scripts/reference.py generates from the code
now: a command, an option or a public function changed without regenerating fails here."""

from __future__ import annotations

import difflib
import importlib.util
import sys
from types import ModuleType

import click
import pytest

import recsql
from recsql.cli import cli
from tests.conftest import ROOT


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recsql_reference_script", ROOT / "scripts" / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing look modules up by name
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
REGENERATE = "python scripts/reference.py"


@pytest.mark.parametrize("name", ["cli", "python"])
def test_reference_is_up_to_date(name):
    path = {"cli": SCRIPT.CLI_FILE, "python": SCRIPT.PYTHON_FILE}[name]
    text = {"cli": SCRIPT.cli_reference, "python": SCRIPT.python_reference}[name]()
    committed = path.read_text() if path.exists() else ""
    if committed != text:
        diff = difflib.unified_diff(
            committed.splitlines(), text.splitlines(), "committed", "generated", lineterm="", n=1
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(
            f"{path.relative_to(ROOT)} is out of date with the code: run `{REGENERATE}` "
            f"and commit the result.\n{shown}",
            pytrace=False,
        )


def _paths(group: click.Group, prefix: str = "recsql"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _paths(command, f"{prefix} {name}")


def test_cli_reference_has_every_command_and_option():
    text = SCRIPT.cli_reference()
    for path, command in _paths(cli):
        section = text.split(f"`{path}`\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        assert f"Usage: {path}" in section
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert f"`{param.opts[0]}" in section or f", {param.opts[0]}" in section, f"{path}: {param.opts}"
        if command.help and "Example:" in command.help:
            for line in command.help.split("Example:", 1)[1].splitlines():
                assert line.strip() in section, f"{path}: its example is missing"


def test_python_reference_has_every_public_name():
    text = SCRIPT.python_reference()
    for name in recsql.__all__:
        assert f"### `recsql.{name}`" in text
    for method in ("similar", "recommend", "recommend_for_ratings", "explain", "popular"):
        assert f"#### `Recommender.{method}`" in text


def test_regenerating_is_one_command_and_said_where_it_matters():
    assert SCRIPT.REGENERATE == REGENERATE
    assert REGENERATE in (ROOT / "docs" / "reference" / "README.md").read_text()
