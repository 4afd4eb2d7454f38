"""A safe arithmetic evaluator for the calculator tool: a tokenizer and a recursive-descent
parser over numbers, + - * / // % ** ^ and parentheses. Nothing is ever passed to eval().
"""

import math
import re
from decimal import Decimal, InvalidOperation

MAX_LENGTH = 200
MAX_EXPONENT = 1000
MAX_DIGITS = 400
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|(\*\*|//|[-+*/%^()]))")


class CalculationError(ValueError):
    pass


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    expression = expression.strip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if not match or match.end() == position:
            raise CalculationError(f"Unexpected character at position {position + 1}")
        tokens.append(match.group(0).strip())
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.index = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise CalculationError("The expression ends too early")
        self.index += 1
        return token

    def expression(self) -> Decimal:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> Decimal:
        value = self.unary()
        while self.peek() in ("*", "/", "//", "%"):
            operator, right = self.take(), self.unary()
            if operator != "*" and right == 0:
                raise CalculationError("Division by zero")
            value = {"*": value * right, "/": value / right, "//": value // right}.get(
                operator, value % right if operator == "%" else value
            )
        return value

    def unary(self) -> Decimal:
        if self.peek() in ("+", "-"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.power()

    def power(self) -> Decimal:
        base = self.atom()
        if self.peek() in ("**", "^"):
            self.take()
            exponent = self.unary()  # right-associative: 2^3^2 = 2^9
            if abs(exponent) > MAX_EXPONENT:
                raise CalculationError(f"Exponents are limited to ±{MAX_EXPONENT}")
            if base == 0 and exponent < 0:
                raise CalculationError("Division by zero")
            return base**exponent
        return base

    def atom(self) -> Decimal:
        token = self.take()
        if token == "(":  # noqa: S105 - a token of the arithmetic, no secret
            value = self.expression()
            if self.take() != ")":
                raise CalculationError("Missing closing parenthesis")
            return value
        if token[0].isdigit() or token[0] == ".":
            return Decimal(token)
        raise CalculationError(f"Unexpected {token!r}")


def calculate(expression: str) -> str:
    """The value of `expression` as text, e.g. calculate("2+3*4") == "14"."""
    if not expression.strip() or len(expression) > MAX_LENGTH:
        raise CalculationError(f"Give an expression of 1 to {MAX_LENGTH} characters")
    parser = _Parser(_tokens(expression))
    try:
        value = parser.expression()
    except (InvalidOperation, OverflowError, ArithmeticError) as error:
        raise CalculationError("The result is out of range or undefined") from error
    if parser.peek() is not None:
        raise CalculationError(f"Unexpected {parser.peek()!r}")
    if not value.is_finite() or value.adjusted() > MAX_DIGITS:
        raise CalculationError("The result is too large")
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value.normalize(), "f")
    return (
        text if len(text) < 40 else f"{float(value):.15g}" if math.isfinite(float(value)) else text
    )
