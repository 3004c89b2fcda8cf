"""The vertical slice end to end: template copy -> demo data -> every step headless -> saved workbook."""
import zipfile

import pandas as pd
import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import libreoffice
from sop_xl.workbook import ribbon, vba
from sop_xl.cli import main
from sop_xl.template.builder import REPO_TEMPLATE


@pytest.fixture(scope="module")
def demo(demo_workbook):
    return demo_workbook


def _table(path, table):
    return pd.read_excel(path, sheet_name=table.sheet, header=table.header_row - 1)


def test_demo_fills_every_result_table(demo):
    for table in (k.FORECAST, k.FORECAST_MODELS, k.DEMAND, k.SUPPLY_PLAN, k.UTILIZATION, k.MATERIALS, k.BOTTLENECKS,
                  k.BALANCE_COSTS, k.COST_ROLLUP, k.REQUIREMENTS, k.FINANCIALS, k.EXCEPTIONS, k.HEATMAP, k.LOG):
        frame = _table(demo, table)
        assert len(frame.dropna(how="all")) > 0, table.name
    fc = _table(demo, k.FORECAST)
    assert fc["Item"].nunique() == 40
    assert (fc["Lo95"] <= fc["Forecast"] + 1e-9).all() and (fc["Forecast"] <= fc["Hi95"] + 1e-9).all()
    log = _table(demo, k.LOG)
    assert set(log["Step"]) >= {"forecast", "balance", "cost_rollup", "financials"}
    assert (log["Status"] == "OK").all()


# Rows of the Demand table given (SalesOverride, EventUplift) and what Consensus must then be, by hand;
# "stat" stands for the row's StatForecast.
CONSENSUS_CASES = [
    ((None, None), "stat"),
    ((123.5, None), 123.5),
    ((None, 7.0), "stat+7"),
    ((50.0, -5.0), 45.0),
    ((0.0, None), 0.0),  # an override of 0 is an override, not a blank
    ((0.0, 2.5), 2.5),
]


@pytest.mark.libreoffice
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice not installed")
def test_consensus_formula_and_python_rule_agree(demo, tmp_path):
    """Every Consensus cell holds the whole formula for its own row, and LibreOffice's value of it
    equals the Python rule (engine.demand.with_consensus) that headless runs plan on."""
    from openpyxl.utils import get_column_letter, range_boundaries

    from sop_xl.engine.demand import with_consensus
    from sop_xl.plan.context import Context
    from sop_xl.workbook import open_file

    copy = tmp_path / "consensus.xlsm"
    copy.write_bytes(demo.read_bytes())
    wb = load_workbook(copy, keep_vba=True)
    ws = wb[k.DEMAND.sheet]
    _c1, _r1, _c2, last = range_boundaries(ws.tables[k.DEMAND.name].ref)
    first = k.DEMAND.header_row + 1
    header = [c.value for c in ws[k.DEMAND.header_row]]
    col = {name: header.index(name) + 1 for name in ("StatForecast", "SalesOverride", "EventUplift", "Consensus")}
    stat, over, up = (get_column_letter(col[n]) for n in ("StatForecast", "SalesOverride", "EventUplift"))
    assert last - first + 1 > len(CONSENSUS_CASES)
    for i, ((override, uplift), _want) in enumerate(CONSENSUS_CASES):
        ws.cell(first + i, col["SalesOverride"]).value = override
        ws.cell(first + i, col["EventUplift"]).value = uplift
    for r in range(first, last + 1):
        assert ws.cell(r, col["Consensus"]).value == f"=IF(ISNUMBER({over}{r}),{over}{r},{stat}{r})+N({up}{r})", r
    # Overrides (0 included) and uplifts (negative included) on a spread of further rows.
    for i, r in enumerate(range(first + len(CONSENSUS_CASES), last + 1, 7)):
        ws.cell(r, col["SalesOverride"]).value = [0, 12.5, 400, None][i % 4]
        ws.cell(r, col["EventUplift"]).value = [None, -3, 250, 1000.25][(i // 2) % 4]
    inputs = pd.DataFrame(
        [[ws.cell(r, col[n]).value for n in ("StatForecast", "SalesOverride", "EventUplift")]
         for r in range(first, last + 1)],
        columns=["stat_forecast", "sales_override", "event_uplift"], dtype=float)
    wb.save(copy)

    insp = libreoffice.inspect(copy, sheets_for_values=[k.DEMAND.sheet], timeout=240)
    grid = insp.values[k.DEMAND.sheet]
    calc = [grid[r - 1][col["Consensus"] - 1] for r in range(first, last + 1)]
    assert all(isinstance(v, float) for v in calc), [v for v in calc if not isinstance(v, float)][:5]
    assert calc == pytest.approx(with_consensus(inputs)["consensus"].tolist(), rel=1e-12, abs=1e-9)
    # ... and what a plan uses: the Demand table as validation reads it from the saved file.
    with open_file(copy, writable=False) as book:
        ctx = Context(book)
        ctx.load((k.ITEMS, k.DEMAND))
        planned = with_consensus(ctx.frame(k.DEMAND))["consensus"].tolist()
    assert calc == pytest.approx(planned, rel=1e-12, abs=1e-9)
    assert inputs["sales_override"].notna().sum() > 20  # typed overrides were really compared
    for i, (_inputs, want) in enumerate(CONSENSUS_CASES):
        s = inputs["stat_forecast"].iloc[i]
        want = {"stat": s, "stat+7": s + 7.0}.get(want, want)
        assert calc[i] == pytest.approx(want, rel=1e-12, abs=1e-9), CONSENSUS_CASES[i]


def test_financials_reconcile(demo):
    fin = _table(demo, k.FINANCIALS)
    assert (fin["Revenue"] - fin["COGS"] - fin["Margin"]).abs().max() < 1e-6
    plan = _table(demo, k.SUPPLY_PLAN)
    assert plan["ShippedOnTime"].sum() <= plan["Demand"].sum() + 1e-6


def test_saved_workbook_keeps_vba_ribbon_charts_tables_names_and_validation(demo):
    # The project is rebuilt once the run adds the family pages (a document module per new sheet): every
    # module of the template holds the template's code.
    modules, template = vba.read_vba_modules(demo), vba.read_vba_modules(REPO_TEMPLATE)
    assert all(modules[name] == code for name, code in template.items())
    assert ribbon.read_custom_ui(demo) == ribbon.read_custom_ui(REPO_TEMPLATE)
    wb = load_workbook(demo, keep_vba=True)
    tpl = load_workbook(REPO_TEMPLATE, keep_vba=True)
    assert len(wb[k.DASHBOARD_SHEET]._charts) == len(tpl[k.DASHBOARD_SHEET]._charts) == 4
    for table in k.TABLES.values():
        assert table.name in wb[table.sheet].tables
    assert set(wb.defined_names.keys()) == set(tpl.defined_names.keys())
    for sheet in (k.ITEMS.sheet, k.ACTUALS.sheet, k.SETTINGS_SHEET):
        assert len(wb[sheet].data_validations.dataValidation) == len(tpl[sheet].data_validations.dataValidation)
    with zipfile.ZipFile(demo) as zf:
        assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in zf.read("[Content_Types].xml").decode()
    assert "OK" in str(wb[k.START_SHEET]["B4"].value)


def test_a_second_run_on_the_saved_workbook_keeps_overrides(demo, tmp_path):
    copy = tmp_path / "again.xlsm"
    copy.write_bytes(demo.read_bytes())
    wb = load_workbook(copy, keep_vba=True)
    ws = wb[k.DEMAND.sheet]
    row = k.DEMAND.header_row + 1
    item = ws.cell(row, 1).value
    period = ws.cell(row, 2).value
    ws.cell(row, k.DEMAND.fields.index("sales_override") + 1, 999.0)
    wb.save(copy)
    ribbon.add_custom_ui(copy, ribbon.read_custom_ui(REPO_TEMPLATE))
    assert main(["run", str(copy), "--steps", "forecast,balance", "--quiet"]) == 0
    dem = _table(copy, k.DEMAND)
    hit = dem[(dem["Item"] == item) & (pd.to_datetime(dem["Period"]) == pd.Timestamp(period))]
    assert hit["SalesOverride"].iloc[0] == 999.0
    plan = _table(copy, k.SUPPLY_PLAN)
    got = plan[(plan["Item"] == item) & (pd.to_datetime(plan["Period"]) == pd.Timestamp(period))]
    assert got["Demand"].iloc[0] == pytest.approx(999.0 + (hit["EventUplift"].fillna(0).iloc[0]))


@pytest.mark.libreoffice
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice not installed")
def test_libreoffice_opens_template_and_demo_sees_vba_and_no_formula_errors(demo):
    with libreoffice.LibreOfficeSession(timeout=240) as lo:
        template, filled = lo.inspect_many([REPO_TEMPLATE, demo], sheets_for_values=[k.DASHBOARD_SHEET])
    for insp in (template, filled):
        assert k.DASHBOARD_SHEET in insp.sheets
        for name in ("xlwings", "SopRibbon", "xlwings_udfs"):
            assert name in insp.basic_modules, name
        assert "RunPython" in insp.basic_modules["SopRibbon"]
        errors = [e for e in insp.formula_errors if "SOP_" not in e["formula"].upper()]
        assert errors == [], errors[:5]
        assert insp.formula_count > 100
    # The dashboard's service level, recalculated by LibreOffice, equals the plan's.
    plan = _table(demo, k.SUPPLY_PLAN)
    kpi = filled.values[k.DASHBOARD_SHEET][4][0]  # A5: service level
    assert kpi == pytest.approx(plan["ShippedOnTime"].sum() / plan["Demand"].sum(), rel=1e-9)


def test_history_ending_before_the_plan_start_still_gives_the_full_horizon(tmp_path):
    from sop_xl.workbook import open_file
    from sop_xl.demo.company import make_demo
    from sop_xl.demo.workbook import fill_workbook
    from sop_xl.plan.pipeline import run
    from sop_xl.template.builder import REPO_TEMPLATE

    frames, settings = make_demo(items_per_family=1)
    hist = frames["tblActuals"]
    frames = {**frames, "tblActuals": hist[hist["period"] < "2025-10-01"]}  # 2 months before PlanStart
    path = tmp_path / "gap.xlsm"
    path.write_bytes(REPO_TEMPLATE.read_bytes())
    with open_file(path) as book:
        fill_workbook(book, frames, {**settings, "Horizon": 6})
        run(book, ["forecast"])
        book.save()
    fc = _table(path, k.FORECAST)
    months = sorted(pd.to_datetime(fc["Period"]).unique())
    assert [m.strftime("%Y-%m") for m in months] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert fc.groupby("Item").size().eq(6).all()
