"""Text: CONCAT, LEN, LOWER, UPPER, TRIM, LEFT, RIGHT, MID, FIND, SUBSTITUTE,
CONTAINS, STARTSWITH, TEXT, VALUE.

Text is compared case-sensitively. LOWER/UPPER change only the ASCII letters A-Z,
because that is what SQLite can do; PostgreSQL and the interpreter do the same
so every back end agrees. TRIM removes leading and trailing spaces.
"""

from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa

from ..types import BOOLEAN, NUMBER, TEXT
from .base import NUM, SCALAR, TXT, Function, Simple

_UP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOW = _UP.lower()
_TO_LOWER = str.maketrans(_UP, _LOW)
_TO_UPPER = str.maketrans(_LOW, _UP)
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)\Z")
_PG_NUMBER_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"


def _str(t) -> sa.types.TypeEngine:
    return sa.String()


class Concat(Function):
    name = "CONCAT"
    category = "Text"
    signature = "CONCAT(value1, value2, ...)  or  a & b"
    description = "Joins values into one text; numbers, dates and booleans are shown as with TEXT."
    example = 'CONCAT(first_name, " ", last_name)'
    blanks = "blanks join as empty text"
    min_args, max_args = 1, None
    never_null = True

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        ok = all([c.expect(a, SCALAR, "CONCAT") for a in args])
        return TEXT if ok else ERROR

    def sql(self, s, n):
        out = s.as_text(n.args[0])
        for a in n.args[1:]:
            out = out.concat(s.as_text(a))
        return sa.type_coerce(out, sa.String())

    def py(self, p, n):
        fs = [p.as_text(a) for a in n.args]
        return lambda rows, rt: "".join([f(rows, rt) for f in fs])


class Len(Simple):
    name = "LEN"
    category = "Text"
    signature = "LEN(text)"
    description = "The number of characters."
    example = 'LEN("Guangzhou")  → 9'
    kinds = (TXT,)
    returns = NUMBER
    min_args, max_args = 1, 1

    def sql_impl(self, s, n, t):
        return sa.type_coerce(sa.func.length(t), s.null(NUMBER).type)

    def py_impl(self, t):
        return Decimal(len(t))


class Lower(Simple):
    name = "LOWER"
    category = "Text"
    signature = "LOWER(text)"
    description = "The text with the letters A-Z in lower case."
    example = 'LOWER(email) = "ann@example.com"'
    kinds = (TXT,)
    returns = TEXT
    min_args, max_args = 1, 1

    def sql_impl(self, s, n, t):
        return sa.func.translate(t, _UP, _LOW) if s.pg else sa.func.lower(t)

    def py_impl(self, t):
        return t.translate(_TO_LOWER)


class Upper(Simple):
    name = "UPPER"
    category = "Text"
    signature = "UPPER(text)"
    description = "The text with the letters a-z in upper case."
    example = 'UPPER("abc")  → "ABC"'
    kinds = (TXT,)
    returns = TEXT
    min_args, max_args = 1, 1

    def sql_impl(self, s, n, t):
        return sa.func.translate(t, _LOW, _UP) if s.pg else sa.func.upper(t)

    def py_impl(self, t):
        return t.translate(_TO_UPPER)


class Trim(Simple):
    name = "TRIM"
    category = "Text"
    signature = "TRIM(text)"
    description = "The text without leading and trailing spaces."
    example = 'TRIM("  a b  ")  → "a b"'
    kinds = (TXT,)
    returns = TEXT
    min_args, max_args = 1, 1

    def sql_impl(self, s, n, t):
        return sa.func.btrim(t, " ") if s.pg else sa.func.trim(t, " ")

    def py_impl(self, t):
        return t.strip(" ")


def _nonneg(s, x):
    return s.clamp(s.to_int(x), 0)


class Left(Simple):
    name = "LEFT"
    category = "Text"
    signature = "LEFT(text, count)"
    description = "The first `count` characters."
    example = 'LEFT("Guangzhou", 5)  → "Guang"'
    kinds = (TXT, NUM)
    returns = TEXT
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, t, k):
        return sa.func.substr(t, 1, _nonneg(s, k))

    def py_impl(self, t, k):
        return t[: max(int(k), 0)]


class Right(Simple):
    repeats_args = True
    name = "RIGHT"
    category = "Text"
    signature = "RIGHT(text, count)"
    description = "The last `count` characters."
    example = 'RIGHT("Guangzhou", 4)  → "zhou"'
    kinds = (TXT, NUM)
    returns = TEXT
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, t, k):
        if s.pg:
            return sa.func.right(t, _nonneg(s, k))
        k = s.to_int(k)
        return sa.case(
            (k > 0, sa.func.substr(t, -k)), (k <= 0, sa.func.substr(t, 1, 0)), else_=None
        )

    def py_impl(self, t, k):
        k = int(k)
        return t[-k:] if k > 0 else ""


class Mid(Simple):
    name = "MID"
    category = "Text"
    signature = "MID(text, start, count)"
    description = (
        "`count` characters from position `start` (the first character is 1; below 1 counts as 1)."
    )
    example = 'MID("Guangzhou", 6, 4)  → "zhou"'
    kinds = (TXT, NUM, NUM)
    returns = TEXT
    min_args, max_args = 3, 3

    def sql_impl(self, s, n, t, start, k):
        st = s.clamp(s.to_int(start), 1)
        return sa.func.substr(t, st, _nonneg(s, k))

    def py_impl(self, t, start, k):
        st = max(int(start), 1) - 1
        return t[st : st + max(int(k), 0)]


class Find(Simple):
    name = "FIND"
    category = "Text"
    signature = "FIND(needle, text)"
    description = (
        "The position (from 1) of the first `needle` in `text`, 0 when absent. Case-sensitive."
    )
    example = 'FIND("@", email)'
    kinds = (TXT, TXT)
    returns = NUMBER
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, needle, t):
        fn = sa.func.strpos(t, needle) if s.pg else sa.func.instr(t, needle)
        return sa.type_coerce(fn, s.null(NUMBER).type)

    def py_impl(self, needle, t):
        return Decimal(t.find(needle) + 1)


class Substitute(Simple):
    name = "SUBSTITUTE"
    category = "Text"
    signature = "SUBSTITUTE(text, old, new)"
    description = "The text with every `old` replaced by `new`."
    example = 'SUBSTITUTE(phone, " ", "")'
    kinds = (TXT, TXT, TXT)
    returns = TEXT
    min_args, max_args = 3, 3

    def sql_impl(self, s, n, t, old, new):
        return sa.func.replace(t, old, new)

    def py_impl(self, t, old, new):
        return t if old == "" else t.replace(old, new)


class Contains(Simple):
    name = "CONTAINS"
    category = "Text"
    signature = "CONTAINS(text, part)"
    description = "TRUE when `part` occurs in `text` (case-sensitive)."
    example = 'CONTAINS(LOWER(name), "ltd")'
    blanks = "FALSE when an argument is blank"
    kinds = (TXT, TXT)
    returns = BOOLEAN
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, t, part):
        return (sa.func.strpos(t, part) if s.pg else sa.func.instr(t, part)) > 0

    def py_impl(self, t, part):
        return part in t


class StartsWith(Simple):
    name = "STARTSWITH"
    category = "Text"
    signature = "STARTSWITH(text, part)"
    description = "TRUE when `text` begins with `part` (case-sensitive)."
    example = 'STARTSWITH(phone, "+86")'
    blanks = "FALSE when an argument is blank"
    kinds = (TXT, TXT)
    returns = BOOLEAN
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, t, part):
        return sa.func.substr(t, 1, sa.func.length(part)) == part

    def py_impl(self, t, part):
        return t.startswith(part)


class Text(Function):
    name = "TEXT"
    category = "Text"
    signature = "TEXT(value)"
    description = (
        "The value as text: numbers rounded to at most 9 decimals without trailing zeros "
        "(no thousands separators, no exponent), dates as YYYY-MM-DD, date-times as "
        "YYYY-MM-DD HH:MM:SS (UTC), booleans as TRUE/FALSE."
    )
    example = 'TEXT(amount) & " USD"'
    min_args, max_args = 1, 1

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        return TEXT if c.expect(args[0], SCALAR, "TEXT") else ERROR

    def sql(self, s, n):
        return s.text_of(n.args[0])

    def py(self, p, n):
        return p.text_of(n.args[0])


class Value(Simple):
    repeats_args = True
    name = "VALUE"
    category = "Text"
    signature = "VALUE(text)"
    description = (
        "The number written in the text: an optional sign, digits and at most one decimal "
        "point, with spaces around allowed. Anything else gives blank."
    )
    example = 'VALUE("  12.50 ")  → 12.5'
    blanks = "blank for blank or non-numeric text"
    kinds = (TXT,)
    returns = NUMBER
    min_args, max_args = 1, 1

    def sql_impl(self, s, n, t):
        if s.pg:
            tt = sa.func.btrim(t, " ")
            ok = tt.op("~")(sa.literal(_PG_NUMBER_RE))
            return sa.type_coerce(
                sa.case((ok, sa.cast(tt, sa.Numeric())), else_=None), s.null(NUMBER).type
            )
        tt = sa.func.trim(t, " ")
        body = sa.case((sa.func.substr(tt, 1, 1).in_(["+", "-"]), sa.func.substr(tt, 2)), else_=tt)
        dots = sa.func.length(body) - sa.func.length(sa.func.replace(body, ".", ""))
        ok = sa.and_(
            body.op("NOT GLOB")(sa.literal("*[^0-9.]*")),
            body.op("GLOB")(sa.literal("*[0-9]*")),
            dots <= 1,
        )
        return sa.type_coerce(
            sa.case((ok, sa.cast(tt, sa.Float())), else_=None), s.null(NUMBER).type
        )

    def py_impl(self, t):
        tt = t.strip(" ")
        return Decimal(tt) if _NUMBER_RE.match(tt) else None
