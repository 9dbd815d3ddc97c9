"""Small integer expressions in scenario values: ``$i*8``, ``$(i % 31) << 3``, ``$base+i``.

A text value that starts with ``$`` is an expression over the variables bound where it
is used (``for`` variables, template arguments): integers (decimal, ``0x``, ``0o``,
``0b``), names, ``+ - * // % << >> & | ^ ~``, parentheses, ``min(a, b, ...)`` and
``max(...)``. Nothing else parses (no attributes, calls, floats, comparisons), so an
expression can only compute an integer. Every intermediate value stays within 64 bits
and shifts are at most 64, so a file cannot ask for a huge number; a problem is an
`ExprError` saying what was expected, which the caller places at the value's path.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

MAX_EXPR_CHARS = 200
LIMIT = 1 << 64
"""Every value an expression computes is below 2^64 in magnitude."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
    ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
}
_FUNCS = {"min": min, "max": max}
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "//": lambda a, b: a // b, "%": lambda a, b: a % b, "<<": lambda a, b: a << b,
          ">>": lambda a, b: a >> b, "&": lambda a, b: a & b, "|": lambda a, b: a | b,
          "^": lambda a, b: a ^ b}
SYNTAX = "an integer expression (integers, names, + - * // % << >> & | ^ ~, (), min, max)"


class ExprError(Exception):
    """An expression that does not parse or evaluate: what was expected, what was found."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected, self.got = expected, got


def is_expression(value: object) -> bool:
    """A text value written as an expression (starts with ``$``)."""
    return isinstance(value, str) and value.startswith("$") and len(value) > 1


def _source(text: str) -> str:
    body = text[1:]
    if len(body) > MAX_EXPR_CHARS:
        raise ExprError(f"an expression of at most {MAX_EXPR_CHARS} characters",
                        f"{len(body)} characters")
    return body


def parse(text: str) -> ast.expr:
    """The checked syntax tree of ``$expr`` (ExprError if anything is outside the grammar)."""
    body = _source(text)
    try:
        tree = ast.parse(body.strip(), mode="eval").body
    except SyntaxError:
        raise ExprError(SYNTAX, repr(text)) from None
    for node in ast.walk(tree):
        ok = isinstance(node, ast.BinOp | ast.UnaryOp | ast.Name | ast.Load | ast.Call
                        | ast.operator | ast.unaryop) or (
            isinstance(node, ast.Constant) and type(node.value) is int)
        if isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
            hint = " (use // for integer division)" if isinstance(node.op, ast.Div) else ""
            raise ExprError(SYNTAX + hint, repr(text))
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op,
                                                            ast.USub | ast.UAdd | ast.Invert):
            raise ExprError(SYNTAX, repr(text))
        if isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Name) and node.func.id in _FUNCS and node.args
                and not node.keywords):
            raise ExprError(SYNTAX + "; the only functions are min and max", repr(text))
        if not ok:
            raise ExprError(SYNTAX, repr(text))
    return tree


def names(text: str) -> set[str]:
    """The variables ``$expr`` uses (empty if it does not parse)."""
    try:
        tree = parse(text)
    except ExprError:
        return set()
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate(text: str, env: Mapping[str, int]) -> int:
    """The value of ``$expr`` with ``env``'s variables (ExprError: unbound name, division
    by zero, a value or shift out of bounds)."""
    tree = parse(text)
    unbound = sorted(names(text) - set(env))
    if unbound:
        bound = ", ".join(sorted(env)) or "none"
        raise ExprError(f"variables bound here ({bound})",
                        f"{unbound[0]} in {text!r}")

    def ev(node: ast.expr) -> int:
        if isinstance(node, ast.Constant):
            assert type(node.value) is int  # parse() admits no other constant
            return _checked(node.value, text)
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return _checked(-v if isinstance(node.op, ast.USub) else
                            ~v if isinstance(node.op, ast.Invert) else v, text)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _FUNCS[node.func.id](ev(a) for a in node.args)
        assert isinstance(node, ast.BinOp)
        a, b = ev(node.left), ev(node.right)
        op = _BINOPS[type(node.op)]
        if op in ("//", "%") and b == 0:
            raise ExprError("a non-zero divisor", f"{text!r} divides by zero")
        if op in ("<<", ">>") and not 0 <= b <= 64:
            raise ExprError("a shift of 0..64", f"{b} in {text!r}")
        result = _APPLY[op](a, b)
        return _checked(result, text)

    return ev(tree)


def _checked(value: int, text: str) -> int:
    if not -LIMIT < value < LIMIT:
        raise ExprError("values within 64 bits", f"an overflow in {text!r}")
    return value


def plain_name(text: str) -> str | None:
    """``$name`` alone: the variable's name (the whole-value substitution), else None."""
    body = text[1:]
    return body if _NAME.fullmatch(body) else None
