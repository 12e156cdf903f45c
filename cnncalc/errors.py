"""The one family of user errors, and where in the spec they point.

The CLI catches only `CnnCalcError`; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
import re
import reprlib
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Iterable, Sequence

MAX_MESSAGE = 4_000  # characters of one error; values are shortened long before (`shown`)
# C0/C1 control characters (the terminal's escape sequences start with one), and the invisible format
# characters that reorder or hide text (bidi overrides, zero-width spaces)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


class _Short(reprlib.Repr):
    """reprlib's bounded repr, also for dict and list subclasses (the spec's marked mappings and lists),
    which reprlib would otherwise write out in full before cutting."""

    def repr1(self, x: Any, level: int) -> str:
        if isinstance(x, dict) and type(x) is not dict:
            return self.repr_dict(x, level)
        if isinstance(x, list) and type(x) is not list:
            return self.repr_list(x, level)
        return super().repr1(x, level)


_SHORT = _Short()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong, _SHORT.maxlevel = 60, 60, 30, 3
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def printable(text: str) -> str:
    """`text` with control and invisible format characters written as escapes (\\x1b, \\u202e), so a spec or
    a file name can never drive the terminal."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def shown(value: Any) -> str:
    """A user's value as Python would write it, shortened (long strings, numbers and lists get '...'), so no
    message grows with what was written in a spec."""
    return printable(_SHORT.repr(value))


def shown_text(text: str, most: int = 80) -> str:
    """A user's text as it is (no quotes added), shortened to `most` characters and made printable."""
    return printable(text if len(text) <= most else text[:most - 3] + "...")


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # verify mismatch, --strict warnings
    USER_ERROR = 2


@dataclass(frozen=True)
class BlockUse:
    """The use of a block that made a layer: the block's name and the line of the entry that used it."""

    block: str
    line: int

    def __str__(self) -> str:
        return f"in block '{shown_text(self.block)}' used at line {self.line}"


Via = BlockUse | str
"""Where a layer's definition came from beyond its own lines: the block use that made it, or a note such as
"value from --set conv1.stride=2"."""


@dataclass(frozen=True)
class Where:
    """A place in a spec: file, 1-based line and column, and the layer it belongs to."""

    file: str | None = None
    line: int | None = None
    col: int | None = None
    layer: str | None = None
    kind: str | None = None
    via: Via | None = None

    def prefix(self) -> str:
        parts = []
        if self.file is not None:
            loc = shown_text(self.file, 200)
            if self.line is not None:
                loc += f":{self.line}"
                if self.col is not None:
                    loc += f":{self.col}"
            parts.append(loc)
        if self.layer is not None:
            parts.append(f"layer '{self.layer}'" + (f" ({self.kind})" if self.kind else ""))
        text = ": ".join(parts)
        if self.via:
            text += f" [{shown_text(str(self.via), 200)}]"
        return text + ": " if text else ""


class CnnCalcError(Exception):
    """A mistake in what the user gave us: a spec, an option, a weights or input file."""

    def __init__(self, message: str, *, fix: str | None = None, where: Where | None = None,
                 field: str | None = None):
        self.message = message
        self.fix = fix
        self.where = where or Where()
        self.field = field
        super().__init__(str(self))

    def at(self, where: Where) -> "CnnCalcError":
        """The same error, located (keeps any line the raiser already knew better)."""
        merged = replace(where, line=self.where.line or where.line, col=self.where.col or where.col) \
            if self.where.line else where
        return type(self)(self.message, fix=self.fix, where=merged, field=self.field)

    def __str__(self) -> str:
        field = f"field '{self.field}': " if self.field else ""
        text = f"{self.where.prefix()}{field}{self.message}"
        if self.fix:
            text = text.rstrip(".") + ". " + self.fix
        return shown_text(text, MAX_MESSAGE)


class SpecError(CnnCalcError):
    """The spec file is malformed: YAML, fields, names, wiring."""


class ShapeError(CnnCalcError):
    """The spec is well-formed but its shapes do not work out."""


class WeightsError(CnnCalcError):
    """A weights or input array does not fit the network."""


class ManyErrors(CnnCalcError):
    """Several independent errors in one spec, reported together."""

    def __init__(self, errors: Sequence[CnnCalcError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def combined(errors: Sequence[CnnCalcError]) -> CnnCalcError:
    """One error to raise for one or more: the error itself, or all of them together."""
    return errors[0] if len(errors) == 1 else ManyErrors(errors)


def raise_all(errors: Sequence[CnnCalcError]) -> None:
    """Raise these errors together, if there are any."""
    if errors:
        raise combined(errors)


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """'Did you mean 'x'? ' for the closest option, or '' when none is close."""
    word = str(word)
    if len(word) > 100:  # no real name is this long, and difflib's work grows with it
        return ""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"Did you mean '{close[0]}'? " if close else ""
