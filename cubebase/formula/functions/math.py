"""Math: ROUND, ROUNDUP, ROUNDDOWN, CEILING, FLOOR, ABS, MOD, POWER, SQRT.

Rounding is half away from zero everywhere. Every floor/ceil/round first snaps the
scaled value to 9 decimals, in every back end (``snap`` in SQL, ``snap9`` here): on
SQLite, where numbers are binary floats, 1.005 stored as 1.00499999999999989 still
rounds to 1.01; on PostgreSQL and in the interpreter, a division's last digit (1/7
is cut at 20 decimals by one, 28 digits by the other) cannot put a whole number on
different sides: CEILING(-2020, 1/7) is -2020 in both.
Digits are truncated to whole numbers and limited to -15..9.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, ROUND_UP, Decimal

import sqlalchemy as sa

from ..types import NUMBER
from .base import NUM, Simple, literal_int

MIN_DIGITS, MAX_DIGITS = -15, 9


def clamp_digits(n) -> int:
    return max(MIN_DIGITS, min(MAX_DIGITS, int(n)))


def snap9(x: Decimal) -> Decimal:
    """``x`` at 9 decimals (half away from zero), as ``SqlCompiler.snap``."""
    return x.scaleb(9).to_integral_value(ROUND_HALF_UP).scaleb(-9)


def py_round(x: Decimal, n: int, mode: str) -> Decimal:
    return snap9(x.scaleb(n)).to_integral_value(mode).scaleb(-n)


class _Rounding(Simple):
    kinds = (NUM, NUM)
    returns = NUMBER
    min_args, max_args = 1, 2
    mode = ROUND_HALF_UP

    def digits_sql(self, s, n):
        """(scale factor 10^n, n) as SQL; a literal n becomes a literal factor."""
        if len(n.args) < 2:
            return s.num(1), sa.literal(0, sa.Integer())
        lit = literal_int(n.args[1])
        if lit is not None:
            d = clamp_digits(lit)
            return s.num(Decimal(1).scaleb(d)), sa.literal(d, sa.Integer())
        d = s.to_int(s.value(n.args[1]))
        d = s.clamp(d, MIN_DIGITS, MAX_DIGITS)
        factor = sa.func.power(sa.cast(10, sa.Numeric()) if s.pg else 10.0, d)
        return factor, d

    def sql(self, s, n):
        x = s.as_numeric(s.value(n.args[0]))
        factor, d = self.digits_sql(s, n)
        # x and the factor may be read twice (sign and magnitude; scale and unscale)
        out = s.let(lambda x, factor, d: self.sql_round(s, x, factor, d), x, factor, d)
        return sa.type_coerce(out, s.null(NUMBER).type)

    def py(self, p, n):
        mode = self.mode
        fx = p.compile(n.args[0])
        if len(n.args) < 2:
            return lambda rows, rt: None if (x := fx(rows, rt)) is None else py_round(x, 0, mode)
        fd = p.compile(n.args[1])

        def rounding(rows, rt):
            x = fx(rows, rt)
            d = fd(rows, rt)
            if x is None or d is None:
                return None
            return py_round(x, clamp_digits(d), mode)

        return rounding


class Round(_Rounding):
    name = "ROUND"
    category = "Math"
    signature = "ROUND(number, [digits])"
    description = "Rounds half away from zero to `digits` decimals (default 0; negative rounds to tens, hundreds...)."
    example = "ROUND(amount * 0.05, 2)"
    mode = ROUND_HALF_UP

    def sql_round(self, s, x, factor, d):
        if s.pg:  # x * 10^d at 9 decimals is x at d + 9 decimals; the result keeps d
            return sa.func.round(sa.func.round(x, d + 9), d)
        return sa.func.round(s.snap(x * factor)) / factor


class RoundUp(_Rounding):
    name = "ROUNDUP"
    category = "Math"
    signature = "ROUNDUP(number, [digits])"
    description = "Rounds away from zero to `digits` decimals."
    example = "ROUNDUP(3.141, 2)  → 3.15"
    mode = ROUND_UP

    def sql_round(self, s, x, factor, d):
        return sa.func.sign(x) * sa.func.ceil(s.snap(sa.func.abs(x) * factor)) / factor


class RoundDown(_Rounding):
    name = "ROUNDDOWN"
    category = "Math"
    signature = "ROUNDDOWN(number, [digits])"
    description = "Rounds toward zero to `digits` decimals."
    example = "ROUNDDOWN(3.149, 2)  → 3.14"
    mode = ROUND_DOWN

    def sql_round(self, s, x, factor, d):
        if s.pg:
            return sa.func.trunc(sa.func.round(x, d + 9), d)
        return sa.func.sign(x) * s.floor(s.snap(sa.func.abs(x) * factor)) / factor


class _Multiple(Simple):
    kinds = (NUM, NUM)
    returns = NUMBER
    min_args, max_args = 1, 2
    mode = ROUND_CEILING
    sql_fn = "ceil"

    def sql(self, s, n):
        x = s.as_numeric(s.value(n.args[0]))
        fn = sa.func.ceil if self.sql_fn == "ceil" else s.floor
        if len(n.args) == 1:
            return sa.type_coerce(fn(s.snap(x)), s.null(NUMBER).type)
        out = s.let(lambda x, m: fn(s.snap(s.divide(x, m))) * m, x, s.value(n.args[1]))
        return sa.type_coerce(out, s.null(NUMBER).type)

    def py_impl(self, x, m=Decimal(1)):
        if m == 0:
            return None
        if m == 1:
            return snap9(x).to_integral_value(self.mode)
        return snap9(x / m).to_integral_value(self.mode) * m


class Ceiling(_Multiple):
    name = "CEILING"
    category = "Math"
    signature = "CEILING(number, [multiple])"
    description = "The smallest multiple of `multiple` (default 1) that is >= number."
    example = "CEILING(4.2)  → 5;  CEILING(23, 10)  → 30"
    mode = ROUND_CEILING
    sql_fn = "ceil"


class Floor(_Multiple):
    name = "FLOOR"
    category = "Math"
    signature = "FLOOR(number, [multiple])"
    description = "The largest multiple of `multiple` (default 1) that is <= number."
    example = "FLOOR(4.8)  → 4;  FLOOR(-4.2)  → -5"
    mode = ROUND_FLOOR
    sql_fn = "floor"


class Abs(Simple):
    name = "ABS"
    category = "Math"
    signature = "ABS(number)"
    description = "The number without its sign."
    example = "ABS(-3)  → 3"
    kinds = (NUM,)
    returns = NUMBER
    min_args, max_args = 1, 1

    def sql_impl(self, s, n, x):
        return sa.type_coerce(sa.func.abs(x), s.null(NUMBER).type)

    def py_impl(self, x):
        return abs(x)


def py_mod(a: Decimal, b: Decimal) -> Decimal | None:
    if b == 0:
        return None
    r = a % b
    if r != 0 and (r < 0) != (b < 0):
        r += b
    return r


class Mod(Simple):
    name = "MOD"
    category = "Math"
    signature = "MOD(number, divisor)  or  number % divisor"
    description = (
        "The remainder of the division; it has the sign of the divisor (like spreadsheets)."
    )
    example = "MOD(-7, 3)  → 2"
    blanks = "a blank argument or a zero divisor gives blank"
    kinds = (NUM, NUM)
    returns = NUMBER
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, a, b):
        return s.modulo(a, b)

    def py_impl(self, a, b):
        return py_mod(a, b)


def py_power(a: Decimal, b: Decimal) -> Decimal | None:
    if a == 0 and b == 0:
        return Decimal(1)
    if (a == 0 and b < 0) or (a < 0 and b != b.to_integral_value()):
        return None
    try:
        return a**b
    except ArithmeticError:
        return None


class Power(Simple):
    repeats_args = True
    name = "POWER"
    category = "Math"
    signature = "POWER(number, exponent)"
    description = "`number` raised to `exponent`."
    example = "POWER(1.05, 3)"
    blanks = "blank when an argument is blank, or for 0 to a negative power, or a negative number to a fractional power"
    kinds = (NUM, NUM)
    returns = NUMBER
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, a, b):
        a, b = s.as_numeric(a), s.as_numeric(b)
        trunc = sa.func.trunc(b) if s.pg else sa.cast(b, sa.Integer())
        bad = sa.or_(sa.and_(a == 0, b < 0), sa.and_(a < 0, b != trunc))
        return sa.type_coerce(sa.case((bad, None), else_=sa.func.power(a, b)), s.null(NUMBER).type)

    def py_impl(self, a, b):
        return py_power(a, b)


class Sqrt(Simple):
    name = "SQRT"
    category = "Math"
    signature = "SQRT(number)"
    description = "The square root."
    example = "SQRT(16)  → 4"
    blanks = "blank for a blank or negative number"
    kinds = (NUM,)
    returns = NUMBER
    min_args, max_args = 1, 1
    repeats_args = True

    def sql_impl(self, s, n, x):
        x = s.as_numeric(x)
        return sa.type_coerce(sa.case((x >= 0, sa.func.sqrt(x)), else_=None), s.null(NUMBER).type)

    def py_impl(self, x):
        return None if x < 0 else x.sqrt()
