"""The arithmetic a text states: which of its equations are false (the gate's step check).

A rewrite can reach the gold answer and still state a false step ("Total: 0 + 24 + 8 = 116", a
term dropped); SFT on it trains wrong arithmetic. Each line is read as numbers and operators
(+ - * / and their typographic forms, `x` between numbers) with the words between them dropped,
so "3 spiders x 8 legs = 24 legs" reads 3 x 8 = 24; a colon, semicolon or two numbers in a row
end an expression. Every `=` whose sides are both expressions, at least one with an operator, is
an equation; sympy checks it exactly (rationals, no floating point).
"""

from __future__ import annotations

import re
from functools import lru_cache

import sympy

_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations
_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?|[-+−–*×·/÷()=]|\bx\b|[:;]|[^\W\d_]+", re.UNICODE)
_OPERATOR = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "·": "*", "x": "*",
             "/": "/", "÷": "/"}


def _tokens(line: str) -> list[str]:
    """Numbers, operators, parentheses, `=` and boundaries (`|`); words are dropped."""
    out = []
    for tok in _TOKEN.findall(line):
        if tok[0].isdigit():
            out.append(tok.replace(",", ""))
        elif tok in _OPERATOR or tok in "()=":
            out.append(_OPERATOR.get(tok, tok))
        elif tok in ":;":
            out.append("|")
    return out


def _run(tokens: list[str], start: int, step: int) -> list[str]:
    """Numbers, operators and parentheses from `start` walking by `step` (-1 or +1), until a
    boundary, an `=` or a second number in a row (two numbers in a row are two expressions)."""
    out, last_number, i = [], False, start
    while 0 <= i < len(tokens):
        tok = tokens[i]
        number = tok[0].isdigit()
        if tok in ("|", "=") or (number and last_number):
            break
        out.append(tok)
        if tok not in "()":
            last_number = number
        i += step
    return out[::-1] if step < 0 else out


def _trimmed(expr: list[str]) -> list[str]:
    """Without dangling operators: an expression opens with a number, `(` or a minus, and ends
    with a number or `)`."""
    while expr and expr[0] in "+*/)":
        expr = expr[1:]
    while expr and expr[-1] in "+-*/(":
        expr = expr[:-1]
    return expr


@lru_cache(maxsize=4096)
def _value(expr: str):
    try:
        return sympy.sympify(expr, rational=True)
    except (sympy.SympifyError, SyntaxError, TypeError, ZeroDivisionError):
        return None


def equations(text: str) -> list[tuple[str, str]]:
    """(left, right) of every checkable equation the text states, in order."""
    found = []
    for line in _CALCULATOR.sub(" ", text).splitlines():
        tokens = _tokens(line)
        for i, tok in enumerate(tokens):
            if tok != "=":
                continue
            left, right = _trimmed(_run(tokens, i - 1, -1)), _trimmed(_run(tokens, i + 1, 1))
            if not left or not right or left.count("(") != left.count(")") \
                    or right.count("(") != right.count(")"):
                continue
            if not any(t in "+-*/" for t in left[1:] + right[1:]):
                continue  # "3 spiders = 3": a label, not arithmetic
            found.append((" ".join(left), " ".join(right)))
    return found


def false_equations(text: str) -> list[str]:
    """The stated equations whose two sides differ, as `left = right` strings."""
    wrong = []
    for left, right in equations(text):
        a, b = _value(left), _value(right)
        if a is None or b is None or a.has(sympy.zoo, sympy.nan) or b.has(sympy.zoo, sympy.nan):
            continue
        if sympy.simplify(a - b) != 0:
            wrong.append(f"{left} = {right}")
    return wrong


def states_false_equation(text: str) -> bool:
    return bool(false_equations(text))
