"""Review meeting: scenarios side by side, snapshots and plan-vs-last-plan, the dashboard's charts."""
import re

import pandas as pd
import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import libreoffice
from sop_xl.cli import main


@pytest.fixture()
def plan(demo_workbook, tmp_path):
    path = tmp_path / "plan.xlsm"
    path.write_bytes(demo_workbook.read_bytes())
    return path


def _table(path, table):
    return pd.read_excel(path, sheet_name=table.sheet, header=table.header_row - 1)


def test_scenarios_side_by_side(plan):
    assert main(["scenarios", str(plan), "--quiet"]) == 0
    res = _table(plan, k.SCENARIO_RESULTS).set_index("Scenario")
    assert list(res.index) == ["Base", "Upside", "Downside", "TentBoom", "CostUp"]
    # More demand sells more (capacity permitting); costlier inputs earn less margin on the same volume.
    assert res.loc["Upside", "Revenue"] > res.loc["Base", "Revenue"] > res.loc["Downside", "Revenue"]
    assert res.loc["CostUp", "Margin"] < res.loc["Base", "Margin"]
    assert (res["ServiceLevel"] <= 1 + 1e-9).all()
    base_fin = _table(plan, k.FINANCIALS)
    assert res.loc["Base", "Revenue"] == pytest.approx(base_fin["Revenue"].sum(), rel=1e-6)
    log = _table(plan, k.LOG)
    assert (log["Step"].iloc[-1], log["Status"].iloc[-1]) == ("scenarios", "OK")
    assert log["Message"].iloc[-1] == "5 scenarios: Base, Upside, Downside, TentBoom, CostUp"
    # Against Base: the totals' difference, and per family the parts add up to the Total row.
    for name in ("Upside", "CostUp"):
        assert res.loc[name, "RevenueVsBase"] == pytest.approx(res.loc[name, "Revenue"] - res.loc["Base", "Revenue"],
                                                               rel=1e-6)
        assert res.loc[name, "MarginVsBase"] == pytest.approx(res.loc[name, "Margin"] - res.loc["Base", "Margin"],
                                                              rel=1e-6)
    diffs = _table(plan, k.SCENARIO_DIFFS)
    assert set(diffs["Scenario"]) == {"Upside", "Downside", "TentBoom", "CostUp"}
    whole = diffs[diffs["Period"].isna()]
    up = whole[whole["Scenario"] == "Upside"].set_index("Family")
    assert up.loc["Total", "Revenue"] == pytest.approx(res.loc["Upside", "RevenueVsBase"], rel=1e-6)
    assert up.drop(index="Total")["Revenue"].sum() == pytest.approx(up.loc["Total", "Revenue"], rel=1e-6)
    assert up.loc["Total", "OvertimeHours"] == pytest.approx(
        res.loc["Upside", "OvertimeHours"] - res.loc["Base", "OvertimeHours"], rel=1e-6)
    assert up.drop(index="Total")["OvertimeHours"].isna().all()  # hours belong to resources, not families
    monthly = diffs[diffs["Period"].notna() & (diffs["Scenario"] == "Upside") & (diffs["Family"] == "Total")]
    assert len(monthly) == 18 and monthly["Revenue"].sum() == pytest.approx(up.loc["Total", "Revenue"], rel=1e-6)
    assert diffs.index[diffs["Period"].notna()].min() > diffs.index[diffs["Period"].isna()].max()  # horizon first
    wb = load_workbook(plan)
    sheet, coord = next(iter(wb.defined_names[k.LAST_RUN_NAME].destinations))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d scenarios: OK in \d+\.\d s", wb[sheet][coord.replace("$", "")].value)


def test_snapshot_then_change_then_plan_vs_last(plan):
    assert main(["snapshot", str(plan), "--label", "v1", "--quiet"]) == 0
    snaps = _table(plan, k.SNAPSHOTS)
    assert set(snaps["Version"]) == {"v1"}
    assert set(snaps["Measure"]) == {"consensus", "production", "revenue", "margin"}
    # Someone raises an override; the plan is re-run; the second snapshot shows the change.
    wb = load_workbook(plan, keep_vba=True)
    ws = wb[k.DEMAND.sheet]
    r = k.DEMAND.header_row + 1
    item = ws.cell(r, 1).value
    stat = ws.cell(r, 3).value
    ws.cell(r, 4).value = float(stat) + 500.0
    wb.save(plan)
    # A snapshot now would record the new demand with the old supply: refused, with the reason.
    assert main(["snapshot", str(plan), "--label", "too-early", "--quiet"]) == 2
    assert "too-early" not in set(_table(plan, k.SNAPSHOTS)["Version"])
    assert main(["run", str(plan), "--steps", "balance,financials", "--quiet"]) == 0
    assert main(["snapshot", str(plan), "--label", "v2", "--quiet"]) == 0
    changes = _table(plan, k.PLAN_CHANGES)
    hit = changes[(changes["Measure"] == "consensus") & (changes["Key"] == item)]
    assert hit["ChangeUnits"].iloc[0] == pytest.approx(500.0) and hit["ChangeMoney"].isna().all()
    assert set(_table(plan, k.SNAPSHOTS)["Version"]) == {"v1", "v2"}
    assert set(changes["Against"]) == {"v1"}  # none approved yet: against the last one
    money = changes[changes["Measure"].isin(["revenue", "margin"])]
    assert money["ChangeUnits"].isna().all() and money["ChangeMoney"].notna().all()
    items = _table(plan, k.ITEMS).set_index("Item")
    assert (hit["Family"] == items.loc[item, "Family"]).all()
    assert changes["Measure"].iloc[0] == "nervousness"
    no_family = changes["Family"].isna().to_numpy()  # components (no family) come after the families
    assert not no_family[1:].any() or no_family[1:].argmax() >= (~no_family[1:]).sum()


def test_plan_vs_the_approved_plan_and_nervousness(plan):
    assert main(["snapshot", str(plan), "--label", "approved-v1", "--approve", "--quiet"]) == 0
    v1 = _table(plan, k.SNAPSHOTS)
    assert (v1["Approved"] == "approved").all()
    assert main(["snapshot", str(plan), "--label", "v2", "--quiet"]) == 0
    # Same plan: nothing moved against the approved one.
    changes = _table(plan, k.PLAN_CHANGES)
    assert len(changes) == 1 and changes["ChangePct"].iloc[0] == 0 and changes["Against"].iloc[0] == "approved-v1"
    # Less capacity in the first months: production moves; compared with the approved plan, not v2.
    wb = load_workbook(plan, keep_vba=True)
    ws = wb[k.RESOURCES.sheet]
    col = k.RESOURCES.first_col + k.RESOURCES.fields.index("available_hours")
    for r in range(k.RESOURCES.header_row + 1, ws.max_row + 1):
        if ws.cell(r, col).value is not None:
            ws.cell(r, col).value = float(ws.cell(r, col).value) * 0.8
    wb.save(plan)
    assert main(["run", str(plan), "--steps", "balance,financials", "--quiet"]) == 0
    assert main(["snapshot", str(plan), "--label", "v3", "--quiet"]) == 0
    changes = _table(plan, k.PLAN_CHANGES)
    assert set(changes["Against"]) == {"approved-v1"}
    snaps = _table(plan, k.SNAPSHOTS)
    prod = snaps[snaps["Measure"] == "production"]
    first = sorted(prod["Period"].unique())[:3]
    a = prod[(prod["Version"] == "approved-v1") & prod["Period"].isin(first)].set_index(["Key", "Period"])["Value"]
    b = prod[(prod["Version"] == "v3") & prod["Period"].isin(first)].set_index(["Key", "Period"])["Value"]
    expect = (b.reindex(a.index.union(b.index)).fillna(0) - a.reindex(a.index.union(b.index)).fillna(0)).abs().sum() \
        / a.abs().sum()
    assert expect > 0.01
    assert changes["ChangePct"].iloc[0] == pytest.approx(expect, rel=1e-9)
    # Any snapshot on request
    assert main(["snapshot", str(plan), "--label", "v4", "--against", "v2", "--quiet"]) == 0
    assert set(_table(plan, k.PLAN_CHANGES)["Against"]) == {"v2"}
    assert main(["snapshot", str(plan), "--label", "v5", "--against", "nope", "--quiet"]) == 2


def test_every_chart_series_refers_to_a_range_that_exists(plan):
    wb = load_workbook(plan)
    ws = wb[k.DASHBOARD_SHEET]
    refs = []
    for chart in ws._charts:
        for series in (s for part in chart._charts for s in part.series):  # lines laid over bars too
            refs += [series.val.numRef.f, series.cat.numRef.f if series.cat.numRef else series.cat.strRef.f]
            if series.tx and series.tx.strRef:
                refs.append(series.tx.strRef.f)
    assert len(refs) >= 11 * 2
    for ref in refs:
        m = re.fullmatch(r"'?([^'!]+)'?!\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?", ref)
        assert m, ref
        assert m.group(1) in wb.sheetnames
        top = ws[f"{m.group(2)}{m.group(3)}"]
        assert top.value is not None, f"{ref} starts on an empty cell"


@pytest.mark.libreoffice
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice not installed")
def test_dashboard_renders_to_pdf(plan, tmp_path):
    pdf = libreoffice.convert(plan, tmp_path / "dashboard.pdf", sheets=[k.DASHBOARD_SHEET, k.EXCEPTIONS.sheet])
    data = pdf.read_bytes()
    assert data[:4] == b"%PDF" and len(data) > 20_000


def test_the_scenario_setting_plans_with_that_scenarios_changes(plan):
    base = _table(plan, k.SUPPLY_PLAN)["Demand"].sum()
    wb = load_workbook(plan, keep_vba=True)
    sheet, coord = next(iter(wb.defined_names["Scenario"].destinations))
    wb[sheet][coord.replace("$", "")].value = "Upside"
    wb.save(plan)
    assert main(["run", str(plan), "--steps", "balance", "--quiet"]) == 0
    assert _table(plan, k.SUPPLY_PLAN)["Demand"].sum() == pytest.approx(base * 1.15, rel=1e-9)
    wb = load_workbook(plan, keep_vba=True)
    wb[sheet][coord.replace("$", "")].value = "NoSuchScenario"
    wb.save(plan)
    assert main(["run", str(plan), "--steps", "balance", "--quiet"]) == 2
