"""Safe arithmetic for block arguments: `${mid * 4}`, `${0.1 * index / 17}`. Never Python's eval.

Integers stay integers (`/` of two integers must divide exactly); a real number (a literal like `0.1` or a
real-valued argument) makes the result real, with true division. Every intermediate value is bounded."""
from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from typing import Any, Callable, Mapping

from cnncalc.errors import shown, shown_text
from cnncalc.limits import MAX_EXPRESSION, MAX_INT, MAX_REAL

MAX_MAGNITUDE = MAX_INT
MAX_NESTING = 100  # operators inside operators (a ${...} expression is evaluated recursively)

Number = int | float

_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_FUNCTIONS = {"min": min, "max": max}
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_]\w*")  # not the `e` of 1e-3
_PREFIX = "arg_"


class UnknownArgument(ValueError):
    """An expression names something that is not an argument."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


def evaluate(expression: str, names: Mapping[str, Any]) -> Number:
    """Evaluate + - * / // % ( ) min() max() over numbers and argument names; ValueError if not allowed.
    The result is an int when every operand is one, else a float.
    Expressions are at most MAX_EXPRESSION characters, which also bounds how deeply they nest."""
    if len(expression) > MAX_EXPRESSION:
        raise ValueError(f"the expression '{shown_text(expression)}' is longer than {MAX_EXPRESSION:,} characters")
    # argument names may be Python keywords (`in`, `from`): rename every identifier before parsing
    renamed = _IDENTIFIER.sub(lambda m: m.group(0) if m.group(0) in _FUNCTIONS else _PREFIX + m.group(0),
                              expression.strip())
    try:
        with warnings.catch_warnings():  # `1if` and the like: refused below, without a SyntaxWarning on stderr
            warnings.simplefilter("ignore")
            tree = ast.parse(renamed, mode="eval")
    except (SyntaxError, MemoryError, RecursionError):  # the parser's own limits on nesting
        raise ValueError(f"cannot read the expression '{shown_text(expression)}'") from None
    if _depth(tree) > MAX_NESTING:
        raise ValueError(f"the expression '{shown_text(expression)}' nests deeper than {MAX_NESTING} levels")
    return _eval(tree.body, names, expression)


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _eval(node: ast.AST, names: Mapping[str, Any], text: str) -> Number:
    value: Number
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and type(node.value) is not bool:
        value = node.value
    elif isinstance(node, ast.Name) and node.id.startswith(_PREFIX):
        name = node.id[len(_PREFIX):]
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise UnknownArgument(f"'{name}' is not an argument of this block (arguments: {known})", name)
        value = names[name]
        if type(value) not in (int, float):
            raise ValueError(f"argument '{name}' is {shown(value)}, not a number, so it cannot be used in "
                             f"'{shown_text(text)}'")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _eval(node.operand, names, text)
        value = -inner if isinstance(node.op, ast.USub) else inner
    elif isinstance(node, ast.BinOp) and (type(node.op) in _BINARY or isinstance(node.op, ast.Div)):
        left, right = _eval(node.left, names, text), _eval(node.right, names, text)
        if right == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise ValueError(f"division by zero in '{text}'")
        if isinstance(node.op, ast.Div) and (type(left) is float or type(right) is float):
            value = left / right
        elif isinstance(node.op, ast.Div):
            if left % right:
                raise ValueError(f"{left} / {right} is not a whole number in '{shown_text(text)}'; use // to round "
                                 f"down, or a real number for a fraction (e.g. {left} / {right}.0)")
            value = left // right
        else:
            value = _BINARY[type(node.op)](left, right)
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
          and node.args and not node.keywords):
        value = _FUNCTIONS[node.func.id](_eval(arg, names, text) for arg in node.args)
    else:
        raise ValueError(f"'{shown_text(text)}' uses something other than numbers, argument names, "
                         "+ - * / // % and min()/max()")
    if type(value) is float and (not math.isfinite(value) or abs(value) > MAX_REAL):
        raise ValueError(f"'{shown_text(text)}' gives {value}, which is too large (at most {MAX_REAL:g})")
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"'{shown_text(text)}' gives {value}, which is too large")
    return value
