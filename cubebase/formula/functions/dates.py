"""Dates: TODAY, NOW, DATE, YEAR, MONTH, DAY, WEEKDAY, DATEADD, DATEDIFF, EOMONTH.

Dates are calendar days; DateTimes are instants stored as naive UTC. Functions
that take a date accept a DateTime and use its (UTC) date. SQLite stores dates
as ``YYYY-MM-DD`` text and date-times as ``YYYY-MM-DD HH:MM:SS.ffffff`` text
(SQLAlchemy's format), so its arithmetic goes through ``date()``/``strftime()``
modifiers; PostgreSQL uses intervals. Adding months clamps to the end of the
month (Jan 31 + 1 month = Feb 28), on both.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from ..types import DATE, DATETIME, NUMBER
from .base import DAY, NUM, Function, Simple

ADD_UNITS = ("days", "weeks", "months", "years")
DIFF_UNITS = ("days", "months", "years")
SQLITE_DT = "%Y-%m-%d %H:%M:%S.000000"  # SQLAlchemy's SQLite DateTime text, to the second


def as_day(v):
    return v.date() if isinstance(v, datetime) else v


def add_months(d: date, n: int) -> date:
    m = d.year * 12 + (d.month - 1) + n
    y, m = divmod(m, 12)
    last = calendar.monthrange(y, m + 1)[1]
    return d.replace(year=y, month=m + 1, day=min(d.day, last))


def sql_day(s, x, kind: str):
    """The date part of a Date or DateTime expression."""
    if kind == "date":
        return x
    return sa.cast(x, sa.Date()) if s.pg else sa.func.date(x)


def modifier(k, unit: str):
    """A SQLite date modifier such as '-3 months' from an integer expression."""
    return sa.cast(k, sa.String()).concat(f" {unit}")  # NULL stays NULL


def sql_part(s, d, part: str):
    """Year/month/day number of a date expression (an integer)."""
    if s.pg:
        return sa.cast(sa.extract(part, d), sa.Integer())
    fmt = {"year": "%Y", "month": "%m", "day": "%d"}[part]
    return sa.cast(sa.func.strftime(fmt, d), sa.Integer())


class Today(Function):
    name = "TODAY"
    category = "Dates"
    signature = "TODAY()"
    description = "Today's date in the workspace time zone (the same instant for SQL and forms)."
    example = "due_date < TODAY()"
    blanks = "—"

    def type_rule(self, c, call, args, extra):
        return DATE

    def sql(self, s, n):
        return sa.literal(s.ctx.today, sa.Date())

    def py(self, p, n):
        return lambda rows, rt: rt.today


class Now(Function):
    name = "NOW"
    category = "Dates"
    signature = "NOW()"
    description = "The current date and time (UTC)."
    example = 'DATEDIFF(created_at, NOW(), "days")'
    blanks = "—"

    def type_rule(self, c, call, args, extra):
        return DATETIME

    def sql(self, s, n):
        return s.lit(s.ctx.now)

    def py(self, p, n):
        return lambda rows, rt: rt.now


class Date(Simple):
    repeats_args = True
    name = "DATE"
    category = "Dates"
    signature = "DATE(year, month, day)"
    description = (
        "The date; months and days beyond their range roll over like spreadsheets "
        "(DATE(2026, 13, 1) is 2027-01-01). Years outside 1-9999 give blank."
    )
    example = "DATE(2026, 1, 1)"
    kinds = (NUM, NUM, NUM)
    returns = DATE
    min_args, max_args = 3, 3

    def sql_impl(self, s, n, y, m, d):
        y, m, d = s.to_int(y), s.to_int(m), s.to_int(d)
        ok = sa.and_(y.between(1, 9999), sa.func.abs(m) <= 120000, sa.func.abs(d) <= 3650000)
        if s.pg:
            base = sa.func.make_date(y, 1, 1)
            val = sa.cast(base + sa.func.make_interval(0, m - 1, 0, d - 1), sa.Date())
        else:
            start = sa.func.printf("%04d-01-01", y)
            val = sa.func.date(start, modifier(m - 1, "months"), modifier(d - 1, "days"))
        from ..to_sql import day_in_range

        return day_in_range(s, sa.case((ok, val), else_=None), "date")

    def py_impl(self, y, m, d):
        y, m, d = int(y), int(m), int(d)
        if not (1 <= y <= 9999 and abs(m) <= 120000 and abs(d) <= 3650000):
            return None
        try:
            return add_months(date(y, 1, 1), m - 1) + timedelta(days=d - 1)
        except (OverflowError, ValueError):
            return None


class _Part(Simple):
    kinds = (DAY,)
    returns = NUMBER
    min_args, max_args = 1, 1
    part = "year"

    def sql_impl(self, s, n, x):
        d = sql_day(s, x, n.args[0].type.kind)
        return sa.type_coerce(sql_part(s, d, self.part), s.null(NUMBER).type)

    def py_impl(self, x):
        return Decimal(getattr(x, self.part))


class Year(_Part):
    name = "YEAR"
    category = "Dates"
    signature = "YEAR(date)"
    description = "The year of the date."
    example = "YEAR(closed_on) = 2026"
    part = "year"


class Month(_Part):
    name = "MONTH"
    category = "Dates"
    signature = "MONTH(date)"
    description = "The month of the date, 1-12."
    example = "MONTH(closed_on) = MONTH(TODAY())"
    part = "month"


class Day(_Part):
    name = "DAY"
    category = "Dates"
    signature = "DAY(date)"
    description = "The day of the month, 1-31."
    example = "DAY(birthday)"
    part = "day"


class Weekday(Simple):
    name = "WEEKDAY"
    category = "Dates"
    signature = "WEEKDAY(date)"
    description = "The day of the week: 1 = Monday ... 7 = Sunday."
    example = "WEEKDAY(TODAY()) >= 6"
    kinds = (DAY,)
    returns = NUMBER
    min_args, max_args = 1, 1

    def sql_impl(self, s, n, x):
        d = sql_day(s, x, n.args[0].type.kind)
        if s.pg:
            v = sa.cast(sa.extract("isodow", d), sa.Integer())
        else:
            v = (sa.cast(sa.func.strftime("%w", d), sa.Integer()) + 6) % 7 + 1
        return sa.type_coerce(v, s.null(NUMBER).type)

    def py_impl(self, x):
        return Decimal(x.isoweekday())


class DateAdd(Function):
    name = "DATEADD"
    category = "Dates"
    signature = 'DATEADD(date, count, "days"|"weeks"|"months"|"years")'
    description = (
        "The date `count` units later (earlier when negative). `count` is truncated to a "
        "whole number; months and years clamp to the month's end. On a DateTime the "
        "result is to the whole second."
    )
    example = 'DATEADD(start_date, 1, "months")'
    min_args, max_args = 3, 3

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        ok = c.expect(args[0], DAY, "DATEADD (argument 1)")
        ok &= c.expect(args[1], NUM, "DATEADD (argument 2)")
        unit = c.literal_text(call.args[2], ADD_UNITS, "DATEADD's unit")
        if not ok or unit is None:
            return ERROR
        extra["unit"] = unit
        return DATE if args[0].type.kind in ("date", "blank") else DATETIME

    def sql(self, s, n):
        from ..to_sql import day_in_range

        kind = "date" if n.args[0].type.kind in ("date", "blank") else "datetime"
        x, k = s.value(n.args[0]), s.value(n.args[1])
        if not s.pg and n.extra["unit"] in ("months", "years"):  # x is read three times
            return s.let(lambda x, k: day_in_range(s, self.moved(s, n, x, k), kind), x, k)
        return day_in_range(s, self.moved(s, n, x, k), kind)

    def moved(self, s, n, x, k):
        unit, kind = n.extra["unit"], n.args[0].type.kind
        k = s.to_int(k)
        if unit == "weeks":
            k, unit = k * 7, "days"
        if unit == "years":
            k, unit = k * 12, "months"
        if s.pg:
            if unit == "days":
                if kind == "date":
                    return x + k
                return sa.func.date_trunc("second", x + sa.func.make_interval(0, 0, 0, k))
            moved = x + sa.func.make_interval(0, k)
            if kind == "date":
                return sa.cast(moved, sa.Date())
            return sa.func.date_trunc("second", moved)
        if unit == "days":
            mod = modifier(k, "days")
            return sa.func.date(x, mod) if kind == "date" else sa.func.strftime(SQLITE_DT, x, mod)
        base = sa.func.date(x, "start of month", modifier(k, "months"))
        last = sa.cast(sa.func.strftime("%d", base, "+1 month", "-1 day"), sa.Integer())
        day = sa.cast(sa.func.strftime("%d", x), sa.Integer())
        moved = sa.func.date(base, modifier(sa.func.min(day, last) - 1, "days"))
        if kind == "date":
            return moved
        return moved.concat(sa.func.strftime(" %H:%M:%S.000000", x))

    def py(self, p, n):
        unit = n.extra["unit"]
        fx, fk = p.compile(n.args[0]), p.compile(n.args[1])

        def dateadd(rows, rt):
            x, k = fx(rows, rt), fk(rows, rt)
            if x is None or k is None:
                return None
            k = int(k)
            try:
                if unit in ("days", "weeks"):
                    out = x + timedelta(days=k * (7 if unit == "weeks" else 1))
                else:
                    k = k * 12 if unit == "years" else k
                    out = add_months(x, k)
            except (OverflowError, ValueError):
                return None
            return out.replace(microsecond=0) if isinstance(out, datetime) else out

        return dateadd


def py_months_between(a: date, b: date) -> int:
    m = (b.year * 12 + b.month) - (a.year * 12 + a.month)
    if b >= a and b.day < a.day:
        m -= 1
    elif b < a and b.day > a.day:
        m += 1
    return m


class DateDiff(Function):
    name = "DATEDIFF"
    category = "Dates"
    signature = 'DATEDIFF(start, end, "days"|"months"|"years")'
    description = (
        "`end` minus `start` in whole units (negative when `end` is earlier). Months are "
        "complete months (Jan 31 to Feb 28 is 0). DateTimes count by their (UTC) date."
    )
    example = 'DATEDIFF(TODAY(), subscription_end, "days") <= 30'
    min_args, max_args = 3, 3

    def type_rule(self, c, call, args, extra):
        from ..checker import ERROR

        ok = c.expect(args[0], DAY, "DATEDIFF (argument 1)")
        ok &= c.expect(args[1], DAY, "DATEDIFF (argument 2)")
        unit = c.literal_text(call.args[2], DIFF_UNITS, "DATEDIFF's unit")
        if not ok or unit is None:
            return ERROR
        extra["unit"] = unit
        return NUMBER

    def sql(self, s, n):
        unit = n.extra["unit"]
        a = sql_day(s, s.value(n.args[0]), n.args[0].type.kind)
        b = sql_day(s, s.value(n.args[1]), n.args[1].type.kind)
        if unit == "days":
            if s.pg:
                v = b - a
            else:
                v = sa.cast(sa.func.julianday(b) - sa.func.julianday(a), sa.Integer())
            return sa.type_coerce(v, s.null(NUMBER).type)
        return s.let(lambda a, b: self.months(s, unit, a, b), a, b)  # each read 5 times

    def months(self, s, unit, a, b):
        ya, ma, da = (sql_part(s, a, p) for p in ("year", "month", "day"))
        yb, mb, db = (sql_part(s, b, p) for p in ("year", "month", "day"))
        adj = sa.case((sa.and_(b >= a, db < da), 1), (sa.and_(b < a, db > da), -1), else_=0)
        months = (yb * 12 + mb) - (ya * 12 + ma) - adj
        if unit == "years":
            if s.pg:
                months = sa.cast(
                    sa.func.trunc(sa.cast(months, sa.Numeric()).op("/")(12)), sa.Integer()
                )
            else:  # integer division truncates toward zero in SQLite
                months = sa.cast(months, sa.Integer()).op("/")(12)
        return sa.type_coerce(months, s.null(NUMBER).type)

    def py(self, p, n):
        unit = n.extra["unit"]
        fa, fb = p.compile(n.args[0]), p.compile(n.args[1])

        def datediff(rows, rt):
            a, b = fa(rows, rt), fb(rows, rt)
            if a is None or b is None:
                return None
            a, b = as_day(a), as_day(b)
            if unit == "days":
                return Decimal((b - a).days)
            m = py_months_between(a, b)
            if unit == "years":
                m = abs(m) // 12 * (1 if m >= 0 else -1)
            return Decimal(m)

        return datediff


class EoMonth(Simple):
    name = "EOMONTH"
    category = "Dates"
    signature = "EOMONTH(date, months)"
    description = (
        "The last day of the month `months` months after the date's month (0: this month)."
    )
    example = "EOMONTH(TODAY(), 0)"
    kinds = (DAY, NUM)
    returns = DATE
    min_args, max_args = 2, 2

    def sql_impl(self, s, n, x, k):
        from ..to_sql import day_in_range

        return day_in_range(s, self.end_of_month(s, n, x, k), "date")

    def end_of_month(self, s, n, x, k):
        k = s.to_int(k)
        d = sql_day(s, x, n.args[0].type.kind)
        if s.pg:
            start = sa.func.date_trunc("month", d)
            return sa.cast(
                start + sa.func.make_interval(0, k + 1) - sa.func.make_interval(0, 0, 0, 1),
                sa.Date(),
            )
        return sa.func.date(d, "start of month", modifier(k + 1, "months"), "-1 day")

    def py_impl(self, x, k):
        d = as_day(x)
        try:
            first = add_months(d.replace(day=1), int(k) + 1)
            return first - timedelta(days=1)
        except (OverflowError, ValueError):
            return None
