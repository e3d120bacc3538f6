"""Chinese working days, for the large-value report's due date.

PBOC Order [2016] No. 3 Art. 5 asks for a large-value report within 5 working days of the
transaction.  The period counts from the day after (Civil Code Art. 201: the first day of a
period counted in days is not included), so the due date is the 5th working day after the
transaction day, in Beijing time.

Which days are working days is set each year by the State Council's holiday notice (published
around November for the next year): statutory holidays are off and some weekends are made
working days (调休).  That table comes from the `chinesecalendar` package (its data, updated
each year with the notice).  For a year it does not cover yet, the date is estimated on Monday
to Friday and marked `known=False`: the compliance officer sees that it is an estimate and the
package update fixes it (a reindex of the aml projection recomputes the dates).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import chinese_calendar

__all__ = ["BEIJING", "DueDate", "beijing_day", "due_date", "is_working_day"]

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
_DAYS_SEARCHED_MAX = 60  # five working days are never this far: the longest break is 8 days


@dataclass(frozen=True, slots=True)
class DueDate:
    day: dt.date
    known: bool  # False: some day in between lies in a year the holiday table does not cover


def beijing_day(time_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(time_ms // 1000, BEIJING).date()


def is_working_day(day: dt.date) -> tuple[bool, bool]:
    """(working, known): from the State Council's table, or Monday-Friday when not covered."""
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:
        return day.weekday() < 5, False


def due_date(day: dt.date, working_days: int) -> DueDate:
    known = True
    counted = 0
    current = day
    for _ in range(_DAYS_SEARCHED_MAX):
        current += dt.timedelta(days=1)
        working, day_known = is_working_day(current)
        known = known and day_known
        if working:
            counted += 1
            if counted == working_days:
                return DueDate(current, known)
    raise AssertionError(f"no {working_days} working days within {_DAYS_SEARCHED_MAX} days")
