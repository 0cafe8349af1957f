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
