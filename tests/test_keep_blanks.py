"""Rewriting an input table keeps a person's blank cells blank: a blank EventUplift reads as 0, and a
re-forecast (or roll, collect, adopt: all write through pipeline.write_results) used to type that 0
into every blank cell. Checked on the raw cells of the saved workbook."""
from __future__ import annotations

import numpy as np
import pandas as pd
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.cli import EXIT_OK, main
from sop_xl.plan.book import RawTable
from sop_xl.plan.pipeline import keep_blanks
from sop_xl.plan.validation import parse_table

from . import workbooks as W


def _cells(path, fields=("item", "period", "sales_override", "event_uplift", "reason")) -> list[tuple]:
    wb = load_workbook(path)
    return [tuple(W.get_value(wb, k.DEMAND, i, f) for f in fields) for i in range(W.n_rows(wb, k.DEMAND))]


def _edit(path, changes: dict[int, dict]) -> None:
    wb = load_workbook(path)
    for i, values in changes.items():
        for f, v in values.items():
            W.set_value(wb, k.DEMAND, i, f, v)
    wb.save(path)


def test_a_re_forecast_keeps_blank_uplifts_and_reasons_blank_and_typed_ones_as_typed(tmp_path):
    path = W.demo_xlsx(tmp_path)
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    first = _cells(path)
    assert len(first) > 10 and all(r[2] is None and r[3] is None and r[4] is None for r in first)
    # a planner types an uplift of 50 (with a reason), a deliberate 0 and an override
    _edit(path, {1: {"event_uplift": 50, "reason": "fair"}, 2: {"event_uplift": 0}, 3: {"sales_override": 7}})
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    second = {(r[0], r[1]): r for r in _cells(path)}
    typed = {(first[i][0], first[i][1]): i for i in (1, 2, 3)}
    for key, row in second.items():
        i = typed.get(key)
        assert row[2] == (7 if i == 3 else None), row
        assert row[3] == {1: 50, 2: 0}.get(i), row  # blank stays blank (not 0); the typed 0 stays 0
        assert row[4] == ("fair" if i == 1 else None), row


def _raw(rows: list[list]) -> RawTable:
    return RawTable(k.DEMAND.sheet, k.DEMAND.name, list(k.DEMAND.headers), rows, first_row=5, first_col=1)


def test_keep_blanks_matches_rows_by_key_and_writes_changed_or_new_values():
    jan, feb, mar = pd.Timestamp("2026-01-01"), pd.Timestamp("2026-02-01"), pd.Timestamp("2026-03-01")
    raw = _raw([["A", jan, 10.0, None, None, "=F5", None],
                ["A", feb, 10.0, None, 0.0, "=F6", "typed 0"],
                ["B", jan, 5.0, None, "", "=F7", ""]])
    parsed, problems = parse_table(raw, k.DEMAND)
    assert not problems and parsed["event_uplift"].tolist() == [0.0, 0.0, 0.0]  # a blank reads as 0
    # rewritten in another order, B's uplift changed to 0 -> 0 is its reading: still "unchanged";
    # A-Feb was a typed 0; A-Mar is a new row; B-Jan's reason is now given
    frame = pd.DataFrame({"item": ["B", "A", "A", "A"], "period": [jan, mar, feb, jan],
                          "stat_forecast": [6.0, 11.0, 12.0, 13.0], "sales_override": np.nan,
                          "event_uplift": [0.0, 0.0, 0.0, 0.0], "reason": ["why", "", "typed 0", ""]})
    out = keep_blanks(k.DEMAND, frame, raw, parsed)
    assert out["event_uplift"].tolist() == [None, 0.0, 0.0, None]
    assert out["reason"].tolist() == ["why", "", "typed 0", None]
    assert out["stat_forecast"].tolist() == [6.0, 11.0, 12.0, 13.0]  # written by the add-in: not touched
    changed = keep_blanks(k.DEMAND, frame.assign(event_uplift=[3.0, 0.0, 0.0, 4.0]), raw, parsed)
    assert changed["event_uplift"].tolist() == [3.0, 0.0, 0.0, 4.0]  # a new value is written as it is
