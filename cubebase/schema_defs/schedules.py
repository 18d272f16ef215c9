"""Schedules of automations: ``hourly``, ``daily HH:MM``, ``weekly mon HH:MM``,
``monthly D HH:MM``, and their next due time in the workspace time zone.

A due time is a wall-clock time in the workspace's zone, so ``daily 06:00`` stays at
06:00 local across daylight saving changes (a time that does not exist that day runs
an hour later; of a time that happens twice, the first counts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = r"([01]?\d|2[0-3]):([0-5]\d)"
_SCHEDULES = (
    ("hourly", re.compile(r"^hourly$")),
    ("daily", re.compile(rf"^daily\s+{_HHMM}$")),
    ("weekly", re.compile(rf"^weekly\s+({'|'.join(DAYS)})\s+{_HHMM}$")),
    ("monthly", re.compile(rf"^monthly\s+([1-9]|[12]\d|3[01])\s+{_HHMM}$")),
)


@dataclass(frozen=True)
class Schedule:
    """A parsed ``schedule:``; due times are in the workspace time zone."""

    every: str  # hourly daily weekly monthly
    hour: int = 0
    minute: int = 0
    day: int = 0  # weekly: 0 = Monday; monthly: day of the month (the last day when shorter)

    @property
    def text(self) -> str:
        at = f"{self.hour:02d}:{self.minute:02d}"
        if self.every == "hourly":
            return "hourly"
        if self.every == "daily":
            return f"daily {at}"
        if self.every == "weekly":
            return f"weekly {DAYS[self.day]} {at}"
        return f"monthly {self.day} {at}"

    def next_after(self, after: datetime, tz: tzinfo) -> datetime:
        """The first due time strictly after ``after`` (aware), in UTC."""
        local = after.astimezone(tz)
        if self.every == "hourly":
            start = local.replace(minute=0, second=0, microsecond=0)
            cand = start.astimezone(UTC)
            while cand <= after:
                cand += timedelta(hours=1)
            return cand
        day = local.date()
        for _ in range(400):  # at most a year and a bit ahead
            if self._on(day):
                cand = datetime.combine(day, time(self.hour, self.minute), tz).astimezone(UTC)
                if cand > after:
                    return cand
            day += timedelta(days=1)
        raise AssertionError("no due time within a year")  # pragma: no cover

    def _on(self, day: date) -> bool:
        if self.every == "daily":
            return True
        if self.every == "weekly":
            return day.weekday() == self.day
        last = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        return day.day == min(self.day, last)


def parse_schedule(text: str | None) -> Schedule | None:
    """``hourly``, ``daily 06:00``, ``weekly mon 07:30``, ``monthly 1 06:00``; None when
    ``text`` is none of these."""
    norm = " ".join((text or "").lower().split())
    for every, rx in _SCHEDULES:
        m = rx.match(norm)
        if not m:
            continue
        g = m.groups()
        if every == "hourly":
            return Schedule("hourly")
        if every == "daily":
            return Schedule("daily", int(g[0]), int(g[1]))
        if every == "weekly":
            return Schedule("weekly", int(g[1]), int(g[2]), DAYS.index(g[0]))
        return Schedule("monthly", int(g[1]), int(g[2]), int(g[0]))
    return None
