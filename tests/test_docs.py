"""Docs and commands cannot drift apart: every command is in the README, with help and
an example."""

from __future__ import annotations

import re

import click
import pytest

from recsql.cli import cli
from tests.conftest import ROOT


def _commands(group: click.Group, prefix: str = "recsql"):
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # e.g. `recsql models` lists, `recsql models show` shows
                yield path, command
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = list(_commands(cli))


def test_there_are_commands():
    assert {"recsql train", "recsql import ratings", "recsql db upgrade", "recsql demo"} <= {
        path for path, _ in COMMANDS
    }


@pytest.mark.parametrize("path,command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_is_documented(path, command):
    readme = (ROOT / "README.md").read_text()
    assert f"`{path}" in readme, f"{path} is missing from README.md"
    assert command.help and "Example:" in command.help
    example = command.help.split("Example:")[1]
    assert path in example, f"the example of {path} does not use it"


LISTINGS = ["recsql models", "recsql similar", "recsql recommend", "recsql popular", "recsql evaluate", "recsql tune"]


@pytest.mark.parametrize("path", LISTINGS)
def test_every_listing_takes_json(path):
    command = dict(COMMANDS)[path]
    assert "--json" in [option for param in command.params for option in param.opts]


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    setup = re.findall(r"```sh\n(.*?)\n```", readme, flags=re.S)[:2]
    assert "recsql demo" in setup[0]
    assert "pytest" in setup[1]
    assert setup[1] in (ROOT / ".ci" / "run").read_text().splitlines()


def test_where_things_are_lists_every_module():
    """README's map of the package names every module that exists, and nothing that does not."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    named = set()
    for path, what in re.findall(r"^\| `(recsql/[^`]*)` \| (.*) \|$", section, flags=re.M):
        if path.endswith("/"):
            named |= {path + name for name in re.findall(r"`([\w/]+\.py)`", what)}
        else:
            named.add(path)
    modules = {
        str(p.relative_to(ROOT)) for p in (ROOT / "recsql").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    } | {"recsql/__init__.py"}
    assert modules - named == set(), "README's 'Where things are' does not mention these"
    assert named - modules == set(), "README's 'Where things are' names files that do not exist"


@pytest.mark.parametrize("path,method", [
    ("recsql similar", "similar"), ("recsql recommend", "recommend"),
    ("recsql popular", "popular"), ("recsql explain", "explain"),
])
def test_cli_limits_default_like_the_python_api(path, method):
    import inspect

    import recsql

    option = next(p for p in dict(COMMANDS)[path].params if p.name == "limit")
    assert option.default == inspect.signature(getattr(recsql.Recommender, method)).parameters["limit"].default
