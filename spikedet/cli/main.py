"""``spikedet COMMAND ...``: the entry point. Loads the command modules, parses, runs, turns errors into one line.

Exit codes: 0 done, 1 a check failed (``convert``'s equivalence), 2 bad input (one line on stderr), 130
interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys

from spikedet.cli.parser import (
    COMMANDS,
    EXIT_USAGE,
    command_help,
    parse_args,
    stdout_to_stderr,
    usage,
)
from spikedet.errors import SpikedetError, first_line

#: The modules whose decorated functions are the commands, in the order ``spikedet --help`` lists them.
COMMAND_MODULES = ("spikedet.cli.model", "spikedet.cli.convert", "spikedet.cli.spikeyolo", "spikedet.cli.measure",
                   "spikedet.cli.serve")


def load_commands() -> dict:
    """Import every command module (each registers its commands) and return the registry."""
    for name in COMMAND_MODULES:
        importlib.import_module(name)
    return COMMANDS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # With --json, stdout carries JSON only: anything printed while the commands (and Ultralytics) load
        # and run goes to stderr.
        with stdout_to_stderr("--json" in argv):
            load_commands()
            if not argv or argv[0] in ("-h", "--help", "help"):
                print(usage())
                return 0
            if argv[0] in ("-V", "--version", "version"):
                from spikedet import __version__

                print(f"spikedet {__version__}")
                return 0
            if argv[0] in COMMANDS and any(a in ("-h", "--help") for a in argv[1:]):
                print(command_help(COMMANDS[argv[0]]))
                return 0
            invocation = parse_args(argv)
            code = invocation.command.handler(invocation)
        return int(code or 0)
    except BrokenPipeError:  # e.g. `spikedet info ... | head`: the reader has gone, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SpikedetError, OSError) as e:  # OSError: an output a user cannot write (a file as folder, no rights)
        print(f"spikedet {argv[0] if argv else ''}: error: {first_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"spikedet {argv[0] if argv else ''}: interrupted", file=sys.stderr)
        return 130
