"""What one run knows: validated inputs, settings, and the results computed so far (in memory)."""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from sop_xl import contract as k
from sop_xl.plan.book import TableMissing
from sop_xl.plan.dates import far_date_problems, plan_start_problem
from sop_xl.plan.coverage import consistency_problems, coverage_problems, extend_last_month
from sop_xl.plan.validation import (ROW, Problem, ValidationError, check_refs, engine_frame, excel_rows,
                                    UPGRADE_HINT, missing_table_problem, parse_settings, parse_table)


class Context:
    """What one run knows: validated inputs, settings, and results computed so far (in memory)."""

    def __init__(self, book, progress: Callable[[str], None] | None = None):
        self.book = book
        self.frames: dict[str, pd.DataFrame] = {}   # validated inputs, with the _row column
        self.results: dict[str, pd.DataFrame] = {}  # output tables computed in this run
        self.settings: dict[str, Any] = {}
        self.summary: list[str] = []
        self.warnings: list[str] = []
        self.where: dict[str, tuple] = {}  # setting name -> (sheet, row, column letter) of its cell
        self.demand_factors: dict[str, float] = {}  # a scenario's consensus multipliers by family
        self.progress = progress

    def status(self, text: str) -> None:
        self.book.status(text)
        if self.progress:
            self.progress(text)

    # ------------------------------------------------------------------ inputs
    def load(self, tables: tuple[k.Table, ...]) -> None:
        problems: list[Problem] = []
        raw_settings, where = {}, {}
        for s in k.SETTINGS:
            if self.book.has_setting(s.name):
                raw_settings[s.name] = self.book.read_setting(s.name)
                where[s.name] = self.book.setting_address(s.name)
        self.settings, setting_problems = parse_settings(raw_settings, where)
        missing = missing_settings(raw_settings)
        self.where = where
        problems += missing + setting_problems
        problems += self._parse(tables)
        if not missing:  # checks against the plan months mean nothing with defaults standing in
            problems += self._cross_checks()
        if problems:
            raise ValidationError(problems)

    def load_more(self, tables: tuple[k.Table, ...]) -> None:
        """Validate further tables after ``load`` (settings and earlier tables are not read again)."""
        problems = self._parse(tables)
        if problems:
            raise ValidationError(problems)

    def _parse(self, tables: tuple[k.Table, ...]) -> list[Problem]:
        problems: list[Problem] = []
        for table in tables:
            try:
                raw = self.book.read_table(table)
            except TableMissing as exc:
                problems.append(missing_table_problem(exc))
                continue
            frame, found = parse_table(raw, table)
            problems += found
            if found and raw.rows and frame.empty:
                # Its header is unreadable (a column missing): every reference to it would fail too and
                # bury the one real problem under a line per row, so it is no master this time.
                continue
            self.frames[table.name] = frame
        return (problems + check_refs(self.frames, tables)
                + consistency_problems(self.frames, {t.name for t in tables}))

    def _cross_checks(self) -> list[Problem]:
        start = pd.Timestamp(self.settings["PlanStart"])
        wrong_start = plan_start_problem(self.frames, start, self.where.get("PlanStart", (k.SETTINGS_SHEET, None, None)))
        if wrong_start:  # every month check against a mistyped start would only repeat it
            return [wrong_start]
        problems = far_date_problems(self.frames, self.periods)
        if self.settings.get("ExtendLastMonth"):
            self.warnings += extend_last_month(self.frames, self.periods)
        problems += coverage_problems(self.frames, self.periods)
        hist = self.frames.get(k.ACTUALS.name)
        if hist is not None and len(hist):
            future = hist[hist["period"] >= start]
            for _, row in future.head(50).iterrows():
                problems.append(Problem(k.ACTUALS.sheet, k.ACTUALS.name, int(row[ROW]), "Period",
                                        f"{row['period']:%Y-%m} is on or after the plan start {start:%Y-%m}",
                                        "Actuals holds past months only: delete the row or move PlanStart"))
        bom = self.frames.get(k.BOM.name)
        if bom is not None and len(bom):
            from sop_xl.engine.bom import check_bom
            eng = engine_frame(bom).dropna(subset=["parent", "component"])
            # Quantities, duplicates and blanks are already reported by the table check: keep the
            # problems only the BOM graph can see.
            for p in (q for q in check_bom(eng, None) if q.kind in ("cycle", "self_reference")):
                rows = excel_rows(bom, p.rows)
                problems.append(Problem(k.BOM.sheet, k.BOM.name, rows[0] if rows else None, "Component",
                                        p.message + (f" (rows {', '.join(map(str, rows))})" if len(rows) > 1 else ""),
                                        "Break the loop: a component cannot contain its own parent"
                                        if p.kind == "cycle" else "Correct or delete the line"))
        return problems

    def frame(self, table: k.Table) -> pd.DataFrame:
        return engine_frame(self.frames[table.name])

    def previous(self, table: k.Table, missing_ok: bool = False) -> pd.DataFrame:
        """An output of an earlier step: from this run if computed, else as the workbook holds it.

        With ``missing_ok`` a table that is not in the workbook reads as empty.
        """
        if table.name in self.results:
            return self.results[table.name]
        try:
            raw = self.book.read_table(table)
        except TableMissing:
            if missing_ok:
                return pd.DataFrame(columns=table.fields)
            raise
        frame, _problems = parse_table(raw, table)
        return engine_frame(frame)

    @property
    def periods(self) -> pd.DatetimeIndex:
        return pd.date_range(pd.Timestamp(self.settings["PlanStart"]), periods=int(self.settings["Horizon"]),
                             freq="MS")

    def put(self, table: k.Table, frame: pd.DataFrame) -> None:
        self.results[table.name] = frame


def missing_settings(found: dict[str, Any]) -> list[Problem]:
    """Named settings cells the workbook lacks: the plan would silently use the default instead of the
    value the sheet shows (the name Horizon deleted: the cell says 6, the plan would use 18)."""
    missing = [s for s in k.SETTINGS if s.name not in found]
    if not missing:
        return []
    if len(missing) == len(k.SETTINGS):
        return [Problem(k.SETTINGS_SHEET, None, None, None,
                        f"the {k.SETTINGS_SHEET} sheet or all its named cells are missing",
                        f"Copy the {k.SETTINGS_SHEET} sheet from workbook/SOP_Template.xlsm (same names)")]
    return [Problem(k.SETTINGS_SHEET, None, None, f"{s.label} (named cell {s.name})",
                    f"the named cell {s.name} is missing, so the plan would use the default "
                    f"{s.default!s} instead of what the sheet shows",
                    f"Name the value cell again: Formulas > Name Manager > New, name {s.name} (workbook scope)"
                    + UPGRADE_HINT)
            for s in missing]
