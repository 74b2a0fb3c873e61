"""Every option of every command says what it does (and its default, where it has one),
and `edgenas COMMAND --help` prints for every command: the help is the only manual a user
has at the terminal, and an option without it had to be looked up in the code."""

from __future__ import annotations

import argparse
from typing import Iterator

import pytest

from edgenas.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command's parser with the words that reach it, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _arguments() -> Iterator[tuple[str, argparse.Action]]:
    """(``command --option``, action) for every argument but -h/--help and subcommands."""
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                name = action.option_strings[-1] if action.option_strings else action.dest
                yield " ".join(("edgenas", *path, name)), action


#: Every command, groups (`arch`) and the commands in them (`arch show`) alike.
COMMANDS = sorted(" ".join(path) for path, _ in _commands(build_parser()) if path)


def test_the_walk_reaches_nested_commands_and_their_options() -> None:
    names = {name for name, _ in _arguments()}
    assert {"edgenas search --max-mmacs", "edgenas device init --workspace-mb",
            "edgenas supernet train --lr", "edgenas groundtruth build --epochs"} <= names
    assert {"device", "device init", "groundtruth show", "run"} <= set(COMMANDS)


def test_every_option_and_positional_has_help() -> None:
    missing = [name for name, action in _arguments() if not (action.help or "").strip()]
    assert not missing, f"arguments without help: {', '.join(missing)}"


def test_every_option_with_a_default_says_it() -> None:
    """A default the user cannot see is a setting they do not know they chose; argparse's
    %(default)s keeps the text true when the default changes."""
    silent = [name for name, action in _arguments()
              if action.option_strings and not action.required
              and not any(action.default is unset for unset in (None, False, argparse.SUPPRESS))
              and action.default != []
              and "default" not in (action.help or "")]
    assert not silent, f"options whose help does not give their default: {', '.join(silent)}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_prints_and_exits_0(command: str, capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as stop:
        main([*command.split(), "--help"])
    assert stop.value.code == 0
    assert "usage: edgenas " + command in capsys.readouterr().out
