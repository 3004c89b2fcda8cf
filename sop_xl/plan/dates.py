"""Dates far outside the plan: a year typed wrong (2062 for 2026, 1900 for 2019) is refused with its cell.

A validated date is only known to lie between 1900 and 2199 (validation.DATE_MIN/DATE_MAX). Against
the plan such a date can still be absurd, and it costs: a Actuals month in 1900 makes the forecast
fill 1,500 empty months with zeros; a PlanStart in 2062 forecasts 36 years past the history.
The rule, in months so it is exact:
- PlanStart at most MAX_GAP_YEARS after the newest Actuals month (the forecast bridges the gap);
- every other date of an input table within MAX_SPAN_YEARS of the plan: Actuals and Receipts not
  before PlanStart - MAX_SPAN_YEARS, no date after the plan's last month + MAX_SPAN_YEARS.
"""
from __future__ import annotations

import pandas as pd

from sop_xl import contract as k
from sop_xl.plan.validation import ROW, Problem

MAX_GAP_YEARS = 5
MAX_SPAN_YEARS = 30
ROWS_SHOWN = 20  # per table: one wrong year is usually pasted down a whole column


def _months_between(a: pd.Timestamp, b: pd.Timestamp) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def plan_start_problem(frames: dict[str, pd.DataFrame], start: pd.Timestamp,
                       where: tuple[str, int | None, str | None]) -> Problem | None:
    """PlanStart years after the newest Actuals month: a typing error, named at the PlanStart cell."""
    hist = frames.get(k.ACTUALS.name)
    if hist is None or hist["period"].dropna().empty:
        return None
    newest = pd.Timestamp(hist["period"].max())
    gap = _months_between(newest, start)
    if gap <= 12 * MAX_GAP_YEARS:
        return None
    sheet, row, letter = where
    setting = k.SETTINGS_BY_NAME["PlanStart"]
    column = f"{letter} ({setting.label}, named cell PlanStart)" if letter else "Plan start (named cell PlanStart)"
    return Problem(sheet, None, row, column,
                   f"is {start:%Y-%m}, {gap // 12} years after the newest {k.ACTUALS.sheet} month {newest:%Y-%m} "
                   f"(more than {MAX_GAP_YEARS} years: is the year mistyped?)",
                   "Type the first month to plan, right after the history")


def far_date_problems(frames: dict[str, pd.DataFrame], periods: pd.DatetimeIndex) -> list[Problem]:
    """Rows of input tables whose date lies more than MAX_SPAN_YEARS outside the plan."""
    lo = periods[0] - pd.DateOffset(years=MAX_SPAN_YEARS)
    hi = periods[-1] + pd.DateOffset(years=MAX_SPAN_YEARS)
    problems = []
    for table in k.INPUT_TABLES:
        frame = frames.get(table.name)
        if frame is None or frame.empty:
            continue
        for col in table.columns:
            if col.kind != k.DATE:
                continue
            dates = frame[col.field]
            bad = frame[dates.notna() & ((dates < lo) | (dates > hi))]
            for _, row in bad.head(ROWS_SHOWN).iterrows():
                moment = pd.Timestamp(row[col.field])
                side = "before" if moment < lo else "after"
                problems.append(Problem(
                    table.sheet, table.name, int(row[ROW]), col.header,
                    f"is {moment:%Y-%m}, more than {MAX_SPAN_YEARS} years {side} the plan "
                    f"({periods[0]:%Y-%m} to {periods[-1]:%Y-%m})",
                    "Correct the year, or delete the row"))
            if len(bad) > ROWS_SHOWN:
                problems.append(Problem(table.sheet, table.name, None, col.header,
                                        f"{len(bad) - ROWS_SHOWN} more row(s) with dates that far out"))
    return problems
