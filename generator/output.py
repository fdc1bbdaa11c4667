"""What a reporting command prints, as kubectl's ``-o``: a table for people, JSON or YAML for programs.

On a terminal, results carry marks (✓ ✗) in colour; NO_COLOR turns the colour off, a pipe gets plain words.
The format is the operator's choice, never guessed from the terminal: ``table`` unless ``-o`` says otherwise,
piped or not (kubectl does the same). JSON and YAML hold the same rows as the table, in the same order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, TextIO

from generator.yamlio import dump

Format = Literal["table", "json", "yaml"]
FORMATS: tuple[Format, ...] = ("table", "json", "yaml")


def emit(rows: Sequence[dict[str, Any]], output: Format, table: Callable[[], str], out: TextIO) -> None:
    """Print ``rows`` as JSON or YAML, or ``table()`` for the table (it may say more than the rows)."""
    if output == "json":
        print(json.dumps(list(rows), indent=2), file=out)
    elif output == "yaml":
        print(dump(list(rows)), end="", file=out)
    else:
        print(table(), file=out)


GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def marks_on(out: TextIO) -> bool:
    """Marks (✓ ✗) only on a terminal: a pipe or a log gets the words."""
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def mark(ok: bool, word: str, out: TextIO) -> str:
    """``word`` padded as before when ``out`` is not a terminal; on one, ✓ or ✗ and the word, in green or red
    unless NO_COLOR is set (https://no-color.org: any non-empty value)."""
    if not marks_on(out):
        return word
    text = f"{'✓' if ok else '✗'} {word}"
    if os.environ.get("NO_COLOR"):
        return text
    return f"{GREEN if ok else RED}{text}{RESET}"
