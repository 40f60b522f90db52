"""Parsing ``spikedet COMMAND [MAIN] [key=value ...]``: settings, the command registry, help and JSON output.

Settings are Ultralytics-style ``key=value``; ``--key value``, ``--key=value``, ``--flag`` and ``-o OUT``
are accepted for the same settings. ``--json`` prints machine-readable JSON on stdout (everything else goes
to stderr). Bad input gives one line on stderr and exit code 2. A command is one function decorated with
:func:`command` in a module of :mod:`spikedet.cli`.

    >>> parse_value("[640, 480]"), parse_value("true"), parse_value("cuda:0")
    ([640, 480], True, 'cuda:0')
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikedet.errors import SpikedetError, first_line
from spikedet.io.images import check_imgsz

EXIT_USAGE = 2


class UsageError(SpikedetError):
    """Bad command-line input."""


@dataclass
class Setting:
    """One ``key=value`` setting of a command."""

    kind: str  # "int" | "float" | "bool" | "str" | "choice" | "size" (an image size or [h, w]) | "square"
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    multiple: int | None = None  # the value must be a multiple of this (image sizes: the model stride)

    def convert(self, key: str, raw: Any) -> Any:
        value = parse_value(raw) if isinstance(raw, str) else raw
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise UsageError(f"{key} must be true or false, got {raw!r}")
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"{key} must be an integer, got {raw!r}")
            return self._check_range(key, value)
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"{key} must be a number, got {raw!r}")
            return self._check_range(key, float(value))
        if self.kind in ("size", "square"):  # image size: 640, or [h, w] for "size"; the one image-size rule
            if self.kind == "square" and not (isinstance(value, int) and not isinstance(value, bool)):
                raise UsageError(f"{key} must be an integer, got {raw!r}")
            if isinstance(value, (list, tuple)) and len(value) != 2:
                raise UsageError(f"{key} must be an integer or [height, width], got {raw!r}")
            try:
                return check_imgsz(list(value) if isinstance(value, tuple) else value, self.multiple, key)
            except SpikedetError as e:
                raise UsageError(str(e)) from None
        if self.kind == "choice":
            text = str(raw)
            if text not in self.choices:
                raise UsageError(f"{key} must be one of {', '.join(self.choices)}, got {raw!r}")
            return text
        if value is None:
            return None
        return str(raw)

    def _check_range(self, key: str, value):
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"{key} must be >= {self.minimum:g}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise UsageError(f"{key} must be <= {self.maximum:g}, got {value}")
        if self.multiple and value % self.multiple:
            raise UsageError(f"{key} must be a multiple of {self.multiple}, got {value}")
        return value


def parse_value(text: str) -> Any:
    """Ultralytics-style value: booleans, None, numbers and lists from text; anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for convert in (int, float):
        with contextlib.suppress(ValueError):
            return convert(text)
    if text.strip()[:1] in "[(":
        with contextlib.suppress(ValueError, SyntaxError):
            return ast.literal_eval(text.strip())
    return text


@dataclass
class Command:
    name: str
    help: str
    handler: Callable[["Invocation"], int | None]
    main: str | None = None  # what MAIN is, e.g. "DATA"
    main_setting: str | None = None  # the setting MAIN fills, e.g. "data"
    settings: dict[str, Setting] = field(default_factory=dict)
    ultralytics_mode: str | None = None  # accept every Ultralytics setting of this mode
    examples: tuple[str, ...] = ()
    json_output: bool = True  # the command prints machine-readable JSON with --json


@dataclass
class Invocation:
    command: Command
    main: str | None
    settings: dict[str, Any]
    json: bool


COMMANDS: dict[str, Command] = {}
SHORT_OPTIONS = {"o": "output"}
#: Names that spell the same setting: every command that takes weights accepts both ``model=`` (as ``yolo``
#: does) and ``weights=`` (as the service does), whichever of the two it declares.
ALIASES = {"weights": "model", "model": "weights"}


def command(name: str, help: str, **kwargs):
    def decorate(handler):
        COMMANDS[name] = Command(name, help, handler, **kwargs)
        return handler

    return decorate


def parse_args(argv: list[str]) -> Invocation:
    if not argv:
        raise UsageError("no command given; run 'spikedet --help'")
    name, tokens = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UsageError(f"unknown command {name!r}; choose one of: {', '.join(COMMANDS)}")
    cmd = COMMANDS[name]
    main: str | None = None
    raw: dict[str, Any] = {}
    want_json = False
    i = 0

    def put(key: str, value: Any) -> None:
        given = key.replace("-", "_")
        key = canonical_key(cmd, given)
        if key in raw:
            same = f" ({key}= and {ALIASES[key]}= are the same setting)" if key in ALIASES else ""
            raise UsageError(f"setting {key!r} given twice{same}")
        raw[key] = value

    while i < len(tokens):
        tok = tokens[i]
        if tok == "--json":
            want_json = True
        elif tok.startswith("--") and len(tok) > 2:
            key, eq, value = tok[2:].partition("=")
            if eq:
                put(key, value)
            elif _is_flag(cmd, canonical_key(cmd, key.replace("-", "_"))):
                put(key, True)
            elif i + 1 < len(tokens):
                put(key, tokens[i + 1])
                i += 1
            else:
                raise UsageError(f"--{key} needs a value")
        elif tok.startswith("-") and len(tok) == 2 and tok[1] in SHORT_OPTIONS:
            if i + 1 >= len(tokens):
                raise UsageError(f"{tok} needs a value")
            put(SHORT_OPTIONS[tok[1]], tokens[i + 1])
            i += 1
        elif "=" in tok and not tok.startswith("="):
            key, _, value = tok.partition("=")
            put(key, value)
        elif main is None and cmd.main is not None:
            main = tok
        else:
            raise UsageError(f"unexpected argument {tok!r} (settings are key=value)")
        i += 1
    if main is not None and cmd.main_setting:
        if cmd.main_setting in raw:
            raise UsageError(f"{cmd.main} given twice (as {main!r} and {cmd.main_setting}=)")
        raw[cmd.main_setting] = main
    return Invocation(cmd, main, _convert_settings(cmd, raw), want_json)


def canonical_key(cmd: Command, key: str) -> str:
    """The setting ``key`` names in ``cmd``: itself, or its alias (:data:`ALIASES`) when only that is declared."""
    alias = ALIASES.get(key)
    if key not in cmd.settings and alias in cmd.settings:
        return alias
    return key


def _is_flag(cmd: Command, key: str) -> bool:
    setting = cmd.settings.get(key)
    if setting is not None:
        return setting.kind == "bool"
    if cmd.ultralytics_mode:
        from spikedet.offline import import_ultralytics

        import_ultralytics()
        from ultralytics.cfg import CFG_BOOL_KEYS

        return key in CFG_BOOL_KEYS
    return False


def _convert_settings(cmd: Command, raw: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    ultra: dict[str, Any] = {}
    for key, value in raw.items():
        if key in cmd.settings:
            settings[key] = cmd.settings[key].convert(key, value)
        elif cmd.ultralytics_mode:
            ultra[key] = parse_value(value) if isinstance(value, str) else value
        else:
            known = ", ".join(sorted(cmd.settings)) or "none"
            raise UsageError(f"unknown setting {key!r} for '{cmd.name}' (settings: {known})")
    if ultra:
        settings.update(check_ultralytics_settings(ultra))
    for key, setting in cmd.settings.items():
        settings.setdefault(key, setting.default)
    return settings


def check_ultralytics_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Validate settings against Ultralytics' own names and types (one-line errors)."""
    from spikedet.offline import import_ultralytics

    import_ultralytics()
    from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg

    unknown = [k for k in values if k not in DEFAULT_CFG_DICT]
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, DEFAULT_CFG_DICT, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UsageError(f"unknown setting {', '.join(hints)}; see Ultralytics' settings (spikedet COMMAND --help)")
    checked = dict(values)
    try:
        check_cfg(checked, hard=True)
    except (TypeError, ValueError) as e:
        raise UsageError(first_line(e)) from None
    return checked


# -- output helpers ------------------------------------------------------------------------------

@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """While enabled, anything printed (and Ultralytics' log) goes to stderr: stdout is kept for JSON."""
    if not enabled:
        yield
        return
    global _JSON_STREAM
    _JSON_STREAM = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # before Ultralytics is imported: its banner goes to stderr
        handlers = _ultralytics_stream_handlers()
        previous = [h.setStream(sys.stderr) for h in handlers]
        try:
            yield
        finally:
            _JSON_STREAM = None
            for h, stream in zip(handlers, previous):
                h.setStream(stream)


def _ultralytics_stream_handlers() -> list[logging.StreamHandler]:
    from spikedet.offline import import_ultralytics

    import_ultralytics()
    return [h for h in logging.getLogger("ultralytics").handlers if isinstance(h, logging.StreamHandler)]


_JSON_STREAM = None  # the real stdout while stdout_to_stderr() is active


def say(text: str = "") -> None:
    """A line of a command's human-readable output (stdout)."""
    print(text)


def plural(n: int, noun: str) -> str:
    """``1 detection``, ``2 detections``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def emit_json(payload: Any) -> None:
    stream = _JSON_STREAM or sys.stdout
    stream.write(json.dumps(payload, indent=2, default=_json_default) + "\n")
    stream.flush()


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# -- help ----------------------------------------------------------------------------------------

def usage() -> str:
    lines = [
        "usage: spikedet COMMAND [MAIN] [key=value ...] [--json]",
        "",
        "Spiking object detection (IBRA-LIF neurons, SpikeYOLO architecture) on Ultralytics.",
        "",
        "commands:",
    ]
    width = max(len(n) for n in COMMANDS)
    lines += [f"  {c.name:<{width}}  {c.help}" for c in COMMANDS.values()]
    lines += ["", "Settings are key=value (also --key value, --flag, -o OUT). 'spikedet COMMAND --help' lists them."]
    return "\n".join(lines)


def command_help(cmd: Command) -> str:
    main = f" [{cmd.main}]" if cmd.main else ""
    json_flag = " [--json]" if cmd.json_output else ""
    lines = [f"usage: spikedet {cmd.name}{main} [key=value ...]{json_flag}", "", cmd.help, ""]
    if cmd.settings:
        lines.append("settings:")
        for key, s in cmd.settings.items():
            choice = f" ({'|'.join(s.choices)})" if s.choices else ""
            lines.append(f"  {key}={s.default!r}{choice}  {s.help}")
    if cmd.ultralytics_mode:
        examples = {"train": "epochs=, imgsz=, batch=, device=, lr0=, resume=", "val": "imgsz=, batch=, conf=, iou=, device=",
                    "predict": "source=, imgsz=, conf=, iou=, device=, save="}[cmd.ultralytics_mode]
        lines.append(f"  ... and every Ultralytics {cmd.ultralytics_mode} setting ({examples} ...)")
    if cmd.examples:
        lines += ["", "examples:"] + [f"  {e}" for e in cmd.examples]
    return "\n".join(lines)
