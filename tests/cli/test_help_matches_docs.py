"""docs/command_line.md names each command's options as its ``--help`` does: no fewer, no
more.

Each command's synopsis in the page is the fenced code block right after a line
``<!-- synopsis: COMMAND -->`` (invisible once rendered), starting
``python -m skconvnet COMMAND``. The options are read from the argument parser the command
line builds, not from its formatted help.
"""

import argparse
import re
from pathlib import Path

import pytest

from skconvnet.cli.commands import _parser

pytestmark = pytest.mark.no_backend

PAGE = Path(__file__).resolve().parents[2] / "docs" / "command_line.md"
MARKER = re.compile(r"^<!-- synopsis: (\S+) -->[ \t]*$", re.MULTILINE)
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")  # --option or -o, not a-b or x--y
PROGRAM = "python -m skconvnet"


def commands():
    """``{name: parser}`` of the subcommands, as ``python -m skconvnet`` builds them."""
    (subcommands,) = [action for action in _parser()._actions
                      if isinstance(action, argparse._SubParsersAction)]
    return subcommands.choices


def help_options(command):
    """The option strings of ``command``'s parser, but ``-h``/``--help``."""
    return {option for action in commands()[command]._actions
            if not isinstance(action, argparse._HelpAction)
            for option in action.option_strings}


def command_options(text, command):
    """The options named in ``text``, a command line ``python -m skconvnet COMMAND ...``
    (continued over lines or not), after the program and the command."""
    words = " ".join(text.replace("\\\n", " ").split())
    start = f"{PROGRAM} {command}"
    assert words == start or words.startswith(start + " "), \
        f"expected {start!r} ..., got {words[:60]!r}"
    return set(OPTION.findall(words[len(start):]))


def synopses(page):
    """``{command: [text of each synopsis block]}`` of the page's text."""
    found = {}
    for marker in MARKER.finditer(page):
        block = FENCE.match(page, marker.end() + 1)
        assert block, (f"the line {marker.group(0)!r} of {PAGE.name} must be followed at once "
                       "by the fenced code block of the synopsis")
        found.setdefault(marker.group(1), []).append(block.group(1))
    return found


def difference(documented, options, command):
    """What the synopsis of ``command`` lacks and names in excess, as a message."""
    lines = []
    if options - documented:
        lines.append(f"options of 'skconvnet {command} --help' missing from its synopsis in "
                     f"{PAGE.name}: {', '.join(sorted(options - documented))}")
    if documented - options:
        lines.append(f"options in the synopsis of {command} in {PAGE.name} that "
                     f"'skconvnet {command} --help' lacks: "
                     f"{', '.join(sorted(documented - options))}")
    return "\n".join(lines)


def test_each_command_has_one_synopsis_in_the_page():
    found = synopses(PAGE.read_text(encoding="utf-8"))
    assert sorted(found) == sorted(commands()), (
        f"commands without a synopsis: {sorted(set(commands()) - set(found))}; synopses of "
        f"no command: {sorted(set(found) - set(commands()))}")
    assert all(len(blocks) == 1 for blocks in found.values()), \
        f"commands with several synopses: {[c for c, b in found.items() if len(b) > 1]}"


@pytest.mark.parametrize("command", sorted(commands()))
def test_the_synopsis_names_the_options_of_help(command):
    (block,) = synopses(PAGE.read_text(encoding="utf-8"))[command]
    documented, options = command_options(block, command), help_options(command)
    assert documented == options, difference(documented, options, command)


def test_the_examples_use_options_their_command_has():
    """Every command line of the page's code blocks, synopsis or example."""
    page = PAGE.read_text(encoding="utf-8")
    lines = [line for block in FENCE.findall(page)
             for line in re.split(r"\n(?!\s)", block.replace("\\\n", " "))
             if line.startswith(PROGRAM + " ")]
    assert len(lines) >= len(commands())
    for line in lines:
        command = line.split()[3]
        assert command in commands(), f"{line!r}: no command {command!r}"
        unknown = command_options(line, command) - help_options(command)
        assert not unknown, f"{line!r}: {command} has no {', '.join(sorted(unknown))}"


def test_every_option_the_page_names_is_an_option_of_some_command():
    page = PAGE.read_text(encoding="utf-8").replace(PROGRAM, "")
    known = set().union({"-h", "--help"}, *map(help_options, commands()))
    assert set(OPTION.findall(page)) <= known, \
        f"options no command has: {', '.join(sorted(set(OPTION.findall(page)) - known))}"
