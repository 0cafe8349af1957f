"""Docs and commands cannot drift apart: every command is in the reference's table, with
help and an example; the README stays short and says how the tests are set up; every
link between the docs resolves."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from recsql.cli import cli
from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference" / "README.md"
PRODUCTION = DOCS / "howto" / "production.md"
README_MAX_LINES = 250


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


def _section(path: Path, heading: str) -> str:
    """The text under a level-2 heading, up to the next one."""
    return path.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _table_commands() -> list[str]:
    """The commands the reference's table names, without their arguments."""
    rows = re.findall(r"^\| `(recsql [^`]*)` \|", _section(REFERENCE, "Commands"), flags=re.M)
    return [" ".join(word for word in row.split() if re.fullmatch(r"[a-z][a-z-]*", word)) for row in rows]


def test_there_are_commands():
    assert {"recsql train", "recsql import ratings", "recsql db upgrade", "recsql demo"} <= {
        path for path, _ in COMMANDS
    }


@pytest.mark.parametrize("path,command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_is_documented(path, command):
    assert path in _table_commands(), f"{path} is missing from the table in docs/reference/README.md"
    assert command.help and "Example:" in command.help
    example = command.help.split("Example:")[1]
    assert path in example, f"the example of {path} does not use it"


def test_reference_table_names_only_commands():
    assert set(_table_commands()) - {path for path, _ in COMMANDS} == set()


LISTINGS = ["recsql models", "recsql similar", "recsql recommend", "recsql popular", "recsql evaluate", "recsql tune"]


@pytest.mark.parametrize("path", LISTINGS)
def test_every_listing_takes_json(path):
    command = dict(COMMANDS)[path]
    assert "--json" in [option for param in command.params for option in param.opts]


def test_readme_test_command_is_what_ci_runs():
    readme = README.read_text()
    setup = re.findall(r"```sh\n(.*?)\n```", readme, flags=re.S)[:2]
    assert "recsql demo" in setup[0]
    assert "pytest" in setup[1]
    assert setup[1] in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_says_what_the_tests_need():
    """The paragraph after the test command names what tests/conftest.py looks for, and
    how to see why tests skipped."""
    paragraph = _section(README, "Set up").split("The second runs the tests", 1)[1]
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    default_url = re.search(r'"RECSQL_TEST_POSTGRES_URL", "([^"]+)"', conftest).group(1)
    assert f"`{default_url}`" in paragraph
    host, database = re.fullmatch(r"postgresql://\w+@([\d.]+:\d+)/(\w+)", default_url).groups()
    assert f"`{host}`" in paragraph and f"named `{database}`" in paragraph
    assert '"RECSQL_SHARED_DATA", ROOT.parent / "shared" / "data"' in conftest
    assert "`../shared/data`" in paragraph and "`RECSQL_SHARED_DATA`" in paragraph
    for folder in re.findall(r'SHARED_DATA / "([\w-]+)"', conftest):
        assert f"`{folder}/`" in paragraph
    assert 'IN_CI = bool(os.environ.get("CI"))' in conftest and "With `CI` set" in paragraph
    assert "pytest -rs" in paragraph
    assert "export CI=" in (ROOT / ".ci" / "run").read_text()  # "(`.ci/run` sets it)"


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (repeats numbered)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    """Every relative link names a file that exists and, with a #fragment, a heading in it."""
    broken = []
    for link in _links(path):
        if re.match(r"[a-z]+:", link):
            continue  # http:, https:, mailto:
        target, _, fragment = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            broken.append(link)
        elif fragment and file.suffix == ".md" and fragment not in _anchors(file):
            broken.append(link)
    assert broken == [], f"{path.relative_to(ROOT)} links to what does not exist"


def test_docs_name_the_spark_backend():
    """The Spark fit is chosen by `--backend spark` (`backend=` in Python) in what is
    written by hand; the generated reference follows the code."""
    generated = {DOCS / "reference" / "cli.md", DOCS / "reference" / "python.md"}
    for path in _markdown_files():
        if path in generated:
            continue
        text = path.read_text()
        assert "--engine spark" not in text and "engine_name=" not in text, path.relative_to(ROOT)


def test_decisions_stand_alone():
    """Decisions say what was decided and why, not which issue asked for it."""
    decisions = (DOCS / "decisions.md").read_text()
    assert re.findall(r"(?i)\bissues?\b|#\d+", decisions) == []


def test_health_check_codes_in_production_guide():
    """The production guide's health check gives the same exit codes as the README's
    (tests/test_health.py checks those against the code)."""
    from recsql.cli.outcome import MODEL_TOO_OLD, NO_ACTIVE_MODEL, OK, SCHEMA_NOT_CURRENT

    bullet = PRODUCTION.read_text().split("- **Health check.**", 1)[1].split("\n- **", 1)[0]
    for code in (OK, SCHEMA_NOT_CURRENT, NO_ACTIVE_MODEL, MODEL_TOO_OLD):
        assert f"{code} " in bullet or f"{code}," in bullet


def test_where_things_are_lists_every_module():
    """The reference's map of the package names every module that exists, and nothing that does not."""
    section = _section(REFERENCE, "Where things are")
    named = set()
    for path, what in re.findall(r"^\| `(recsql/[^`]*)` \| (.*) \|$", section, flags=re.M):
        if path.endswith("/"):
            named |= {path + name for name in re.findall(r"`([\w/]+\.py)`", what)}
        else:
            named.add(path)
    modules = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "recsql").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    } | {"recsql/__init__.py"}
    assert modules - named == set(), "docs/reference/README.md's 'Where things are' does not mention these"
    assert named - modules == set(), "docs/reference/README.md's 'Where things are' names files that do not exist"


@pytest.mark.parametrize(
    "path,method",
    [
        ("recsql similar", "similar"),
        ("recsql recommend", "recommend"),
        ("recsql popular", "popular"),
        ("recsql explain", "explain"),
    ],
)
def test_cli_limits_default_like_the_python_api(path, method):
    import inspect

    import recsql

    option = next(p for p in dict(COMMANDS)[path].params if p.name == "limit")
    assert option.default == inspect.signature(getattr(recsql.Recommender, method)).parameters["limit"].default
