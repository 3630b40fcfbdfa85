"""The README documents what the code does: every command, its --help, the exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pgguard import errors
from pgguard.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def all_commands() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, cmd in group.commands.items():
            out.append((*prefix, name))
            if isinstance(cmd, click.Group):
                walk(cmd, (*prefix, name))

    walk(cli, ())
    return out


@pytest.mark.parametrize("path", all_commands(), ids=" ".join)
def test_every_command_is_in_the_readme_and_has_help(path: tuple[str, ...]) -> None:
    name = path[-1]
    assert re.search(rf"pgguard (keys )?(\S+ / )?(`?)({name})\b", README) or (
        f"`{name}`" in README
    ), f"README does not mention `pgguard {' '.join(path)}`"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3  # a description, not just a usage line


def test_readme_exit_codes_match_the_error_classes() -> None:
    table = dict(re.findall(r"^\| (\d) \| (.+?) \|$", README, flags=re.MULTILINE))
    assert set(table) == {"0", "1", "2", "3", "4"}
    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PgguardError)
    }
    assert codes <= {1, 2, 3, 4}
    assert errors.NotInstalled.exit_code == 4 and "not installed" in table["4"]
    assert errors.ConnectError.exit_code == 3 and "cannot connect" in table["3"]
    assert errors.PrivilegeError.exit_code == 3 and "privilege" in table["3"]
    assert errors.UsageError.exit_code == 2 and "usage" in table["2"]
    assert errors.GuardRefused.exit_code == 1


def test_readme_holds_the_two_commands() -> None:
    assert ".venv/bin/pgguard demo" in README
    assert "PGGUARD_PG_VERSIONS=14,15,16,17,18 .venv/bin/python -m pytest -q" in README


def test_version_flag() -> None:
    from pgguard import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(cli, ["allow", "--ttl", "soon", "--key-file", "/nonexistent"])
    assert result.exit_code == 2
    result = CliRunner().invoke(cli, ["status", "--no-such-flag"])
    assert result.exit_code == 2


def _leaf_commands() -> list[tuple[str, ...]]:
    leaves = []
    for path in all_commands():
        cmd: click.Command = cli
        for part in path:
            assert isinstance(cmd, click.Group)
            cmd = cmd.commands[part]
        if not isinstance(cmd, click.Group):
            leaves.append(path)
    return leaves


def _command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for part in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[part]
    return cmd


@pytest.mark.parametrize("path", _leaf_commands(), ids=" ".join)
def test_every_command_help_shows_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    # an indented command line, as the examples in every --help are written
    assert re.search(r"^\s+(\$ )?pgguard \S+|Examples?:\s+pgguard \S+", result.output, re.M), (
        result.output
    )


@pytest.mark.parametrize(
    "path",
    [p for p in _leaf_commands() if any("--json" in o.opts for o in _command(p).params)],
    ids=" ".join,
)
def test_every_json_output_is_documented(path: tuple[str, ...]) -> None:
    # the README documents each --json shape under a heading or sentence naming it
    name = " ".join(path)
    assert re.search(rf"`(pgguard )?{re.escape(name)}[^`]*--json", README), (
        f"README does not document `{name} --json`"
    )
