"""Safe integer arithmetic for block arguments: `${mid * 4}`. Never Python's eval."""
from __future__ import annotations

import ast
import operator
import re
from typing import Any, Callable, Mapping

from cnncalc.errors import shown_text
from cnncalc.limits import MAX_EXPRESSION, MAX_INT

MAX_MAGNITUDE = MAX_INT
MAX_NESTING = 100  # operators inside operators (a ${...} expression is evaluated recursively)

_BINARY: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_FUNCTIONS = {"min": min, "max": max}
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_PREFIX = "arg_"


class UnknownArgument(ValueError):
    """An expression names something that is not an argument."""


def evaluate(expression: str, names: Mapping[str, Any]) -> int:
    """Evaluate + - * / // % ( ) min() max() over integers and argument names; ValueError if not allowed.
    Expressions are at most MAX_EXPRESSION characters, which also bounds how deeply they nest."""
    if len(expression) > MAX_EXPRESSION:
        raise ValueError(f"the expression '{shown_text(expression)}' is longer than {MAX_EXPRESSION:,} characters")
    # argument names may be Python keywords (`in`, `from`): rename every identifier before parsing
    renamed = _IDENTIFIER.sub(lambda m: m.group(0) if m.group(0) in _FUNCTIONS else _PREFIX + m.group(0),
                              expression.strip())
    try:
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


def _eval(node: ast.AST, names: Mapping[str, Any], text: str) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        value = node.value
    elif isinstance(node, ast.Name) and node.id.startswith(_PREFIX):
        name = node.id[len(_PREFIX):]
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise UnknownArgument(f"'{name}' is not an argument of this block (arguments: {known})")
        value = names[name]
        if type(value) is not int:
            raise ValueError(f"argument '{name}' is {value!r}, not an integer, so it cannot be used in '{text}'")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _eval(node.operand, names, text)
        value = -inner if isinstance(node.op, ast.USub) else inner
    elif isinstance(node, ast.BinOp) and (type(node.op) in _BINARY or isinstance(node.op, ast.Div)):
        left, right = _eval(node.left, names, text), _eval(node.right, names, text)
        if right == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise ValueError(f"division by zero in '{text}'")
        if isinstance(node.op, ast.Div):
            if left % right:
                raise ValueError(f"{left} / {right} is not a whole number in '{text}'; use // to round down")
            value = left // right
        else:
            value = _BINARY[type(node.op)](left, right)
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
          and node.args and not node.keywords):
        value = _FUNCTIONS[node.func.id](_eval(arg, names, text) for arg in node.args)
    else:
        raise ValueError(f"'{text}' uses something other than integers, argument names, + - * / // % and "
                         "min()/max()")
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"'{text}' gives {value}, which is too large")
    return value
