"""Every command and option of ``sidecar`` explains itself: help text on each, and
examples on each command that parse as the command line they show; ``--help`` prints them
(``cli.main`` run in this process)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

import pytest

from sidecar.cli import _parser, main

HIDDEN = {("serve", "--worker")}  # the supervisor's own flag for the processes it starts


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser and every sub-command's parser, with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


ALL = list(commands(_parser()))


def test_the_walk_finds_every_command() -> None:
    found = {" ".join(path) for path, _ in ALL}
    assert {"serve", "check-config", "sign", "verify", "doctor", "demo"} <= found
    assert {"token new", "token show", "token api-key"} <= found


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(p) or "sidecar" for p, _ in ALL])
def test_every_option_and_command_has_help(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    for action in parser._actions:
        name = action.option_strings[-1] if action.option_strings else action.dest
        if action.help == argparse.SUPPRESS:
            assert (*path, name) in HIDDEN, f"{' '.join(path)} {name} is hidden"
            continue
        assert action.help and action.help.strip(), f"{' '.join(path)} {name} has no help"
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{' '.join(path)} {choice.dest} has no help"


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(p) or "sidecar" for p, _ in ALL])
def test_every_command_shows_examples_that_parse(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    assert parser.epilog and parser.epilog.startswith("examples:\n")
    examples = [line.strip() for line in parser.epilog.splitlines()[1:] if line.strip()]
    assert examples
    for example in examples:
        words = shlex.split(example.partition(" < ")[0])  # a shell redirection is no argument
        assert words[0] == "sidecar" and words[1 : 1 + len(path)] == list(path), example
        if "--help" in words:
            continue
        parsed = _parser().parse_args(words[1:])  # exits (fails the test) on a bad example
        assert callable(parsed.run), example


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(p) or "sidecar" for p, _ in ALL])
def test_help_prints_the_usage_and_the_examples(
    path: tuple[str, ...], parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: {' '.join(('sidecar', *path))}")
    assert parser.epilog is not None and shown.rstrip().endswith(parser.epilog.rstrip())


def test_log_level_choices_and_default() -> None:
    assert _parser().parse_args(["serve", "-c", "x.toml"]).log_level == "info"
    for level in ("debug", "info", "warning", "error"):
        assert _parser().parse_args(["serve", "-c", "x", "--log-level", level]).log_level == level
    with pytest.raises(SystemExit) as refused:
        main(["serve", "-c", "x", "--log-level", "verbose"])
    assert refused.value.code == 2
