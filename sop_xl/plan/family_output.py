"""The family review pages of a run: their numbers from the run's output tables, their layout, and
the sheets replaced in the workbook (pages of families no longer on Items removed)."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from sop_xl import contract as k
from sop_xl.plan.context import Context
from sop_xl.plan.family_layout import family_page, is_family_page, sheet_names
from sop_xl.plan.family_pages import family_figures
from sop_xl.plan.freshness import FAMILY_PAGES
from sop_xl.plan.page import Page

# The steps whose outputs the pages show: any of them refreshes the pages.
PAGE_STEPS = {"balance", "financials", "exceptions"}


def _table(ctx: Context, table: k.Table) -> pd.DataFrame:
    """What this run holds of a table (computed, or validated input), else what the workbook holds."""
    if table.name in ctx.results:
        return ctx.results[table.name]
    if table.name in ctx.frames:
        return ctx.frame(table)
    return ctx.previous(table, missing_ok=True)


def family_pages(ctx: Context, steps: list[str]) -> list[Page]:
    """The pages to write after this run: none when no step of PAGE_STEPS ran or there is no plan."""
    if not PAGE_STEPS & set(steps):
        return []
    plan = _table(ctx, k.SUPPLY_PLAN)
    if plan.empty:
        return []
    figures = family_figures(items=_table(ctx, k.ITEMS), actuals=_table(ctx, k.ACTUALS),
                             demand=_table(ctx, k.DEMAND), plan=plan, financials=_table(ctx, k.FINANCIALS),
                             budget=_table(ctx, k.BUDGET), decisions=_table(ctx, k.EXCEPTIONS),
                             routing=_table(ctx, k.ROUTING), periods=ctx.periods)
    existing = ctx.book.sheet_names()
    ours = {s for s in existing if is_family_page(s, ctx.book.read_cell(s, 1, 1))}
    names = sheet_names(figures, set(existing) - ours)
    # The pages show their freshness stamp; a workbook from before it (no named cell) gets the run's time.
    stamp = FAMILY_PAGES.stamp if ctx.book.has_setting(FAMILY_PAGES.stamp) else None
    label = "" if stamp else f"Written by the run of {datetime.now():%Y-%m-%d %H:%M}."
    return [family_page(f, name, str(ctx.settings.get("Currency") or ""), label, stamp)
            for f, name in zip(figures, names)]


def write_family_pages(book, pages: list[Page]) -> list[str]:
    """Replace the family pages: write this run's, after the Exceptions sheet, and delete the pages of
    families that have gone (a sheet is ours by its name and title mark: family_layout.is_family_page)."""
    if not pages:
        return []
    existing = book.sheet_names()
    new = {p.sheet for p in pages}
    for sheet in existing:
        if sheet not in new and is_family_page(sheet, book.read_cell(sheet, 1, 1)):
            book.delete_sheet(sheet)
    after = next((s for s in (k.EXCEPTIONS.sheet, k.DASHBOARD_SHEET) if s in existing), existing[-1])
    for page in pages:
        book.write_page(page, after)
        after = page.sheet
    return [f"{len(pages)} family pages ({', '.join(p.sheet for p in pages)})"]
