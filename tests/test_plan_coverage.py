"""Coverage of the horizon by Resources and Budget, and ExtendLastMonth, checked before solving."""
from __future__ import annotations

import pandas as pd
import pytest

from sop_xl import contract as k
from sop_xl.plan.coverage import coverage_problems, extend_last_month
from sop_xl.plan.pipeline import validate
from sop_xl.plan.validation import ROW, ValidationError
from sop_xl.workbook import open_file

from . import workbooks as W


def _longer_horizon(extend):
    def mutate(wb):
        W.set_setting(wb, "Horizon", 8)  # the small demo's Resources and Budget cover 6 months
        W.set_setting(wb, "ExtendLastMonth", extend)
    return mutate


def test_a_horizon_beyond_resources_and_budget_is_refused_month_by_month(tmp_path):
    path = W.demo_xlsx(tmp_path, _longer_horizon(False))
    with open_file(path) as book, pytest.raises(ValidationError) as info:
        validate(book)
    lines = [str(p) for p in info.value.problems]
    resources = {r for r in pd.DataFrame(W.small_demo()[0]["tblResources"])["resource"]}
    for r in resources:
        assert (f"sheet 'Resources', table tblResources, column Period: Resource {r} has no rows for "
                f"2026-07 to 2026-08 (2 of the 8 plan months)") in " ".join(lines)
    assert any(line.startswith("sheet 'Budget', table tblBudget, column Period: Family Tents has no rows for "
                               "2026-07 to 2026-08") for line in lines)


def test_extend_last_month_repeats_each_key_s_last_row(tmp_path):
    path = W.demo_xlsx(tmp_path, _longer_horizon(True))
    with open_file(path) as book:
        ctx = validate(book)
    res = ctx.frame(k.RESOURCES)
    assert res.groupby("resource")["period"].nunique().eq(8).all()
    june = res[res["period"] == "2026-06-01"].set_index("resource")
    for month in ("2026-07-01", "2026-08-01"):
        later = res[res["period"] == month].set_index("resource")
        pd.testing.assert_frame_equal(later.drop(columns="period"), june.drop(columns="period"))
    assert ctx.frame(k.BUDGET).groupby("family")["period"].nunique().eq(8).all()
    assert any("Resources: " in w and "ExtendLastMonth" in w for w in ctx.warnings)


def test_a_gap_inside_the_horizon_is_reported_even_when_extending():
    periods = pd.date_range("2026-01-01", periods=4, freq="MS")
    res = pd.DataFrame({"resource": ["R", "R"], "period": [periods[0], periods[2]], "available_hours": [1.0, 2.0],
                        ROW: [5, 6]})
    frames = {k.RESOURCES.name: res}
    extend_last_month(frames, periods)
    assert len(frames[k.RESOURCES.name]) == 3
    problems = coverage_problems(frames, periods)
    assert [p.message for p in problems] == ["Resource R has no rows for 2026-02 (1 of the 4 plan months)"]
