"""The one path every run walks: sheet tables -> validation -> engine -> result tables -> sheets.

The ribbon macros (live Excel) and the CLI (a workbook file) both call ``run`` with an adapter.
All inputs a run needs are validated before any engine work; all outputs are written at the end,
together, so a failed run leaves the workbook as it was.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from openpyxl.utils import get_column_letter

from sop_xl import contract as k
from sop_xl.plan.book import TableMissing
from sop_xl.plan.columns import column_positions
from sop_xl.plan.context import Context
from sop_xl.plan.family_output import family_pages, write_family_pages
from sop_xl.plan.freshness import stamp_outputs
from sop_xl.plan.runlog import recording
from sop_xl.plan.scenario import unknown_scenario, with_scenario
from sop_xl.plan.steps import STEP_ORDER, STEPS, tables_for
from sop_xl.plan import cells
from sop_xl.plan.validation import ROW, ValidationError, missing_table_problem

@dataclass
class RunReport:
    steps: list[str]
    seconds: float = 0.0
    summary: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- writing
def rows_for(table: k.Table, frame: pd.DataFrame, first_row: int, first_col: int = 1,
             headers: list[Any] | None = None) -> list[list[Any]]:
    """Cell values for a table body, in contract column order; formula columns get their formula.

    ``headers`` are the table's headers as the sheet has them: a formula refers to each column where
    the sheet has it (the user may have moved columns); without them, the contract's order.
    """
    n = len(frame)
    offsets = (column_positions(headers, table) if headers is not None
               else {c.field: j for j, c in enumerate(table.columns)})
    letters = {fld: get_column_letter(first_col + j) for fld, j in offsets.items()}
    columns = []
    for col in table.columns:
        if col.formula:
            template = col.formula
            for fld, letter in letters.items():
                template = template.replace("{C:" + fld + "}", letter)
            columns.append([template.replace("{r}", str(first_row + i)) for i in range(n)])
        elif col.field in frame.columns:
            values = frame[col.field]
            if col.kind == k.DATE:
                values = pd.to_datetime(values)
                columns.append([None if pd.isna(v) else v.to_pydatetime() for v in values])
            elif col.kind in (k.NUMBER, k.PERCENT):
                arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                columns.append([None if (v != v or np.isinf(v)) else float(v) for v in arr])
            elif col.kind == k.INTEGER:
                arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                columns.append([None if v != v else int(v) for v in arr])
            else:
                columns.append([None if (v is None or (isinstance(v, float) and v != v)) else str(v)
                                for v in values])
        else:
            columns.append([None] * n)
    return [list(r) for r in zip(*columns)] if n else []


def keep_blanks(table: k.Table, frame: pd.DataFrame, raw, parsed: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` with the cells a person left blank blank again, where the value is still the one the
    blank read as (the column's default): rewriting an input table (re-forecast, roll, collect, adopt)
    must not type 0 into every blank EventUplift. Rows are matched on the table's keys; a changed
    value, or a row that is new, is written as it is."""
    if parsed is None or not len(parsed) or not len(frame) or not table.keys or ROW not in parsed.columns:
        return frame
    positions = column_positions(raw.headers, table)
    fields = [c for c in table.columns if c.default is not None and c.editable and c.formula is None
              and c.field in frame.columns and c.field not in table.keys]
    if not fields:
        return frame
    keys = list(table.keys)
    at = (parsed[ROW].to_numpy() - raw.first_row).astype(int)
    out = None
    for col in fields:
        j = positions[col.field]
        blank = np.array([0 <= i < len(raw.rows) and (j >= len(raw.rows[i]) or cells.is_blank(raw.rows[i][j]))
                          for i in at], dtype=bool)
        if not blank.any():
            continue
        was_blank = pd.MultiIndex.from_frame(parsed.loc[blank, keys])
        new = frame[col.field]
        same = new.eq(col.default) if not isinstance(col.default, float) else \
            pd.to_numeric(new, errors="coerce").eq(float(col.default))
        mask = same.to_numpy() & pd.MultiIndex.from_frame(frame[keys]).isin(was_blank)
        if mask.any():
            out = frame.copy() if out is None else out
            out[col.field] = out[col.field].astype(object).where(~mask, None)
    return frame if out is None else out


def write_results(ctx: Context) -> list[str]:
    """Write every result table; first check that each is there with its columns, so that a missing
    sheet or column stops the run before anything is written."""
    problems, placed = [], {}
    for name in ctx.results:
        table = k.TABLES[name]
        try:
            raw = ctx.book.read_table(table)
            column_positions(raw.headers, table)
            placed[name] = raw
        except TableMissing as exc:
            problems.append(missing_table_problem(exc))
    if problems:
        raise ValidationError(problems)
    written = []
    for name, frame in ctx.results.items():
        table, raw = k.TABLES[name], placed[name]
        if table.role != k.OUTPUT:  # an input table written back keeps what its blanks meant
            frame = keep_blanks(table, frame, raw, ctx.frames.get(name))
        ctx.book.write_table(table, rows_for(table, frame, raw.first_row, raw.first_col, raw.headers))
        written.append(f"{table.sheet} ({len(frame)} rows)")
    return written


def run(book, steps: list[str], progress: Callable[[str], None] | None = None) -> RunReport:
    """Validate everything the steps need, run them in memory, then write all results at once."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s): {', '.join(unknown)}; known: {', '.join(STEPS)}")
    steps = [s for s in STEP_ORDER if s in steps]
    with recording(book, ", ".join(steps)) as rec:
        ctx = Context(book, progress)
        ctx.status("Checking the input tables …")
        ctx.load(tables_for(steps))
        ctx = with_scenario(ctx, steps)
        for step in steps:
            t0 = time.perf_counter()
            ctx.status(f"{step.replace('_', ' ').capitalize()} …")
            STEPS[step][0](ctx)
            rec.step_done(step, time.perf_counter() - t0, ctx.summary[-1] if ctx.summary else "")
        pages = family_pages(ctx, steps)  # computed before anything is written: a failure writes nothing
        ctx.status("Writing results …")
        written = write_results(ctx)
        written += write_family_pages(book, pages)
        ctx.warnings += stamp_outputs(ctx, steps, book, pages=bool(pages))
    return RunReport(steps, rec.seconds, ctx.summary, ctx.warnings, written)


def validate(book) -> Context:
    """Check every input table and setting; raises ValidationError listing all problems."""
    ctx = Context(book)
    try:
        ctx.load(k.INPUT_TABLES)
        problems = []
    except ValidationError as exc:
        problems = exc.problems
    if k.SCENARIOS.name in ctx.frames and (scenario := unknown_scenario(ctx)):
        problems.append(scenario)
    if problems:
        raise ValidationError(problems)
    return ctx
