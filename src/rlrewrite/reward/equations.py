"""The arithmetic a text states: which of its equations are false (the gate's step check).

A rewrite can reach the gold answer and still state a false step ("Total: 0 + 24 + 8 = 116", a
term dropped); SFT on it trains wrong arithmetic. Each line is read as numbers and operators
(+ - * / and their typographic forms, `x` between numbers) with the words between them dropped,
so "3 spiders x 8 legs = 24 legs" reads 3 x 8 = 24. A colon, a semicolon, two numbers in a row,
or a dash that follows a word or opens a line ("- 3 x 8 = 24", a bullet) end an expression. Every
`=` whose sides are both expressions, at least one with an operator, is an equation; sympy
checks it exactly, and a side written as a decimal counts as its rounding ("10 / 3 = 3.33").

Not checked (never rejected): LaTeX (`\\frac`, braces), powers and percentages, mixed fractions
("1 1/2"), and units with a slash ("$55/day"), where a naive reading would be wrong. In a running
chain ("3 x 8 = 24 + 4 = 28") each `=` compares its left side with the first number after it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

import sympy

_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations
_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?|[-+−–*×·/÷()=^%]|\bx\b|[:;]|[^\W\d_]+", re.UNICODE)
_OPERATOR = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "·": "*", "x": "*",
             "/": "/", "÷": "/"}
_DASHES = "-−–"
_UNCHECKABLE = "?"  # a power or a percentage inside an expression: skip that equation
_SKIP_LINE = re.compile(r"[\\{}]")  # LaTeX left after _plain: fractions, powers, ...
_LATEX = [(re.compile(r"\\(?:boxed|text|mathrm)\{([^{}]*)\}"), r" \1 "),
          (re.compile(r"\\times"), " × "), (re.compile(r"\\cdot"), " · "),
          (re.compile(r"\\[()\[\]]|\$"), " ")]


def _plain(line: str) -> str:
    """The LaTeX models wrap plain arithmetic in (\\boxed{28}, \\(3 \\times 8\\), $...$) read as
    text."""
    for pattern, replacement in _LATEX:
        line = pattern.sub(replacement, line)
    return line


def _tokens(line: str) -> list[str]:
    """Numbers, operators, parentheses, `=`, boundaries (`|`) and `?` (uncheckable); words are
    dropped. A dash is a minus only after a number, `)`, `=`, `(` or an operator, or when it is
    glued to the number it negates ("-28" opening a line); otherwise it is a boundary."""
    out: list[str] = []
    previous = None  # the previous raw token, words included
    for match in _TOKEN.finditer(line):
        tok = match.group()
        if tok[0].isdigit():
            out.append(tok.replace(",", ""))
        elif tok in _DASHES:
            glued = match.end() < len(line) and line[match.end()].isdigit()
            after_operand = previous is not None and (previous[0].isdigit() or previous == ")")
            after_operator = previous is not None and (previous in "=(" or previous in _OPERATOR)
            if after_operand or after_operator or (glued and previous is None):
                out.append("-")
            else:
                out.append("|")
        elif tok in _OPERATOR or tok in "()=":
            out.append(_OPERATOR.get(tok, tok))
        elif tok in "^%":
            out.append(_UNCHECKABLE)
        elif tok in ":;":
            out.append("|")
        previous = tok
    return _drop_empty_parentheses(out)


def _drop_empty_parentheses(tokens: list[str]) -> list[str]:
    """"116 legs (all animals)" leaves `116 ( )`: an empty pair says nothing."""
    out: list[str] = []
    for tok in tokens:
        if tok == ")" and out and out[-1] == "(":
            out.pop()
        else:
            out.append(tok)
    return out


def _run(tokens: list[str], start: int, step: int) -> tuple[list[str], bool]:
    """Numbers, operators, parentheses and `?` from `start` walking by `step` (-1 or +1), until
    a boundary, an `=` or a second number in a row; and whether a number in a row stopped it."""
    out, last_number, i = [], False, start
    while 0 <= i < len(tokens):
        tok = tokens[i]
        number = tok[0].isdigit()
        if tok in ("|", "="):
            return (out[::-1] if step < 0 else out), False
        if number and last_number:
            return (out[::-1] if step < 0 else out), True
        out.append(tok)
        if tok not in "()":
            last_number = number
        i += step
    return (out[::-1] if step < 0 else out), False


def _balanced(expr: list[str]) -> list[str]:
    """Without unbalanced parentheses ("(0 + 24 + 8 = 116)" splits the pair across the `=`) and
    dangling operators: an expression opens with a number, `(` or a minus and ends with a number
    or `)`."""
    depth, keep = 0, []
    for tok in expr:
        if tok == "(":
            depth += 1
        elif tok == ")":
            if depth == 0:
                continue
            depth -= 1
        keep.append(tok)
    while depth:  # drop the unclosed openings, innermost first
        keep.reverse()
        keep.remove("(")
        keep.reverse()
        depth -= 1
    while keep and keep[0] in "+*/":
        keep = keep[1:]
    while keep and keep[-1] in "+-*/(":
        keep = keep[:-1]
    return keep


def equations(text: str) -> list[tuple[str, str]]:
    """(left, right) of every checkable equation the text states, in order."""
    found = []
    for line in _CALCULATOR.sub(" ", text).splitlines():
        line = _plain(line)
        if _SKIP_LINE.search(line):
            continue
        tokens = _tokens(line)
        for i, tok in enumerate(tokens):
            if tok != "=":
                continue
            left_raw, stopped = _run(tokens, i - 1, -1)
            right_raw, _ = _run(tokens, i + 1, 1)
            left, right = _balanced(left_raw), _balanced(right_raw)
            if not left or not right or _UNCHECKABLE in left + right:
                continue
            if stopped and len(left) > 1 and left[1] == "/":
                continue  # "1 1/2": a mixed fraction, not 1/2
            end = i + 1 + len(right_raw)
            if end < len(tokens) and tokens[end] == "=":
                right = right[:2] if right[0] == "-" else right[:1]  # a running chain
            if not any(t in "+-*/" for t in left[1:] + right[1:]):
                continue  # "3 spiders = 3": a label, not arithmetic
            found.append((" ".join(left), " ".join(right)))
    return found


@lru_cache(maxsize=4096)
def _value(expr: str):
    """A side's exact rational value, or None: not arithmetic, or a power (`2 ** (1/12)`, read
    as `2 * * ...`: its value may be irrational or astronomically large, so never evaluated)."""
    if "* *" in expr:
        return None
    try:
        value = sympy.sympify(expr, rational=True)
    except (sympy.SympifyError, SyntaxError, TypeError, ValueError, ZeroDivisionError):
        return None
    return value if value.is_number and value.is_rational and value.is_finite else None


def _decimals(side: str) -> int | None:
    """Digits after the point when a side is one decimal number ("3.33" -> 2), else None."""
    parts = side.replace(" ", "").lstrip("-").split(".")
    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
        return len(parts[1])
    return None


def _agree(left: str, right: str, a, b) -> bool:
    if sympy.simplify(a - b) == 0:
        return True
    places = [d for d in (_decimals(left), _decimals(right)) if d is not None]
    if not places:
        return False
    tolerance = Decimal(5) / Decimal(10) ** (min(places) + 1)
    return abs(sympy.Rational(a) - sympy.Rational(b)) <= sympy.Rational(str(tolerance))


def false_equations(text: str) -> list[str]:
    """The stated equations whose two sides differ, as `left = right` strings."""
    wrong = []
    for left, right in equations(text):
        a, b = _value(left), _value(right)
        if a is None or b is None:
            continue
        try:
            agree = _agree(left, right, a, b)
        except (TypeError, ValueError, ArithmeticError, RecursionError):
            continue  # model text the checker cannot evaluate is not judged (nor a crash)
        if not agree:
            wrong.append(f"{left} = {right}")
    return wrong


def states_false_equation(text: str) -> bool:
    return bool(false_equations(text))
