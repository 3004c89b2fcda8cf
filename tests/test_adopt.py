"""Adopt scenario (issue 12) and the cycle buttons (issue 13) on the demo company.

Adoption must write exactly what the scenario run computed, so the plan re-run on the adopted inputs
is the scenario's plan; restore must give the inputs back cell for cell; a refused adoption leaves
the file byte-identical. The buttons run through the xlwings stand-in (tests/fake_xlwings.py).
"""
from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import macros
from sop_xl.cli import main
from sop_xl.plan import review
from sop_xl.workbook import open_file
from tests.fake_xlwings import FakeBook

KPIS = ["service_level", "revenue", "margin", "overtime_hours", "avg_inventory", "unmet", "plan_cost"]


@pytest.fixture()
def plan(demo_workbook, tmp_path):
    path = tmp_path / "plan.xlsm"
    path.write_bytes(demo_workbook.read_bytes())
    return path


def _cells(path, tables=k.INPUT_TABLES) -> dict[str, list[list[tuple[str, object]]]]:
    """Every cell of the tables' sheets: (type, value), as a file reader sees them."""
    wb = load_workbook(path)
    return {t.sheet: [[(type(c.value).__name__, c.value) for c in row] for row in wb[t.sheet].iter_rows()]
            for t in tables}


def _table(path, table) -> pd.DataFrame:
    wb = load_workbook(path)
    ws = wb[table.sheet]
    rows = list(ws.iter_rows(min_row=table.header_row, values_only=True))
    frame = pd.DataFrame(rows[1:], columns=rows[0]).dropna(how="all")
    return frame.rename(columns={c.header: c.field for c in table.columns})


def _setting(path, name):
    wb = load_workbook(path)
    sheet, coord = next(iter(wb.defined_names[name].destinations))
    return wb[sheet][coord.replace("$", "")].value


def _set_setting(path, name, value):
    wb = load_workbook(path, keep_vba=True)
    sheet, coord = next(iter(wb.defined_names[name].destinations))
    wb[sheet][coord.replace("$", "")].value = value
    wb.save(path)


def _consensus(demand: pd.DataFrame) -> pd.Series:
    """The Consensus formula, recomputed here from the cells: IF(ISNUMBER(override), override, stat) + N(uplift)."""
    override = pd.to_numeric(demand["sales_override"], errors="coerce")
    stat = pd.to_numeric(demand["stat_forecast"], errors="coerce").fillna(0.0)
    return override.where(override.notna(), stat) + pd.to_numeric(demand["event_uplift"], errors="coerce").fillna(0.0)


def _scenario_kpis(path) -> pd.DataFrame:
    with open_file(path) as book:
        result = review.run_scenarios(book)
    return result.set_index("scenario")


@pytest.mark.slow
def test_adopting_a_scenario_plans_what_the_scenario_showed(plan, capsys):
    """Upside (demand × 1.15 everywhere, Sewing capacity × 1.10): after adoption the Base plan is the
    scenario's plan — every ScenarioResults total and the LP objective — with the inputs changed as the
    scenario changes them, a snapshot to undo it, Scenario back to Base and Scenarios untouched."""
    shown = _scenario_kpis(plan).loc["Upside"]
    demand_before, resources_before = _table(plan, k.DEMAND), _table(plan, k.RESOURCES)
    scenarios_before = _cells(plan, (k.SCENARIOS,))
    start, horizon = pd.Timestamp(_setting(plan, "PlanStart")), int(_setting(plan, "Horizon"))

    assert main(["adopt", str(plan), "Upside", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Scenario 'Upside' adopted" in out and 'Undo: sop-xl restore "' in out

    # The inputs: consensus × 1.15 in the horizon (recomputed from the cells), Sewing hours × 1.10.
    demand = _table(plan, k.DEMAND)
    inside = pd.to_datetime(demand_before["period"]).between(start, start + pd.DateOffset(months=horizon - 1))
    np.testing.assert_allclose(_consensus(demand)[inside], 1.15 * _consensus(demand_before)[inside], rtol=1e-12)
    assert (_consensus(demand)[~inside] == _consensus(demand_before)[~inside]).all()
    res = _table(plan, k.RESOURCES)
    sewing = res["resource"] == "Sewing"
    for col in ("available_hours", "max_overtime_hours"):
        np.testing.assert_allclose(res.loc[sewing, col], 1.10 * resources_before.loc[sewing, col], rtol=1e-12)
        assert (res.loc[~sewing, col] == resources_before.loc[~sewing, col]).all()
    assert _setting(plan, "Scenario") == "Base"
    assert _cells(plan, (k.SCENARIOS,)) == scenarios_before

    # The Log names the snapshot that undoes it; the snapshot holds the inputs.
    log = _table(plan, k.LOG)
    adopt_row = log[log["step"] == "adopt"].iloc[-1]
    version = adopt_row["message"].split("undo: restore snapshot '")[1].rstrip("'")
    snaps = _table(plan, k.SNAPSHOTS)
    kept = snaps[snaps["version"] == version]
    assert {"consensus", "production", "tblDemand[SalesOverride]", "tblResources[AvailableHours]",
            "tblCosts[Material]", "Settings[Scenario]"} <= set(kept["measure"])

    # The re-plan is the scenario's plan: Base now shows what Upside showed before.
    now = _scenario_kpis(plan).loc["Base"]
    for kpi in KPIS:
        assert now[kpi] == pytest.approx(shown[kpi], rel=1e-7, abs=1e-6), kpi
    # A snapshot after the adoption compares plans only (the input rows of the undo point stay out).
    with open_file(plan) as book:
        review.take_snapshot(book, label="after", against=version)
        book.save()
    changes = _table(plan, k.PLAN_CHANGES)
    assert not changes["measure"].astype(str).str.contains("[", regex=False).any()
    assert {"consensus", "production"} <= set(changes["measure"])


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["CostUp", "TentBoom"])
def test_adopt_then_restore_gives_the_inputs_back_cell_for_cell(plan, capsys, scenario):
    _set_setting(plan, "Scenario", scenario)  # restore puts the setting back as it was too
    assert main(["run", str(plan), "--steps", "balance,cost_rollup,financials,exceptions", "--quiet"]) == 0
    before = _cells(plan)
    supply_before = _table(plan, k.SUPPLY_PLAN)
    assert main(["adopt", str(plan), scenario, "--quiet"]) == 0
    version = capsys.readouterr().out.rsplit('"', 2)[-2]
    changed = _cells(plan)
    assert changed != before  # the adoption did change inputs
    assert main(["restore", str(plan), version, "--quiet"]) == 0
    assert "inputs restored from snapshot" in capsys.readouterr().out
    assert _cells(plan) == before
    assert _setting(plan, "Scenario") == scenario
    # ... and the re-plan gives back the plan as it was (the Scenario setting applies again).
    supply = _table(plan, k.SUPPLY_PLAN)
    np.testing.assert_allclose(supply["production"].astype(float), supply_before["production"].astype(float),
                               rtol=1e-7, atol=1e-6)


def _stale(path):
    """An override typed and not balanced: new demand with old supply."""
    wb = load_workbook(path, keep_vba=True)
    ws = wb[k.DEMAND.sheet]
    col = [c.field for c in k.DEMAND.columns].index("sales_override") + 1
    ws.cell(k.DEMAND.header_row + 1, col).value = 12345
    wb.save(path)


@pytest.mark.slow
@pytest.mark.parametrize("scenario, prepare, says", [
    ("Boom", None, "there is no scenario 'Boom'"),
    ("base", None, "Base is the plan itself"),
    ("Upside", _stale, "the plan is stale"),
])
def test_a_refused_adoption_leaves_the_file_byte_identical(plan, capsys, scenario, prepare, says):
    if prepare:
        prepare(plan)
    before = plan.read_bytes()
    assert main(["adopt", str(plan), scenario, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert plan.read_bytes() == before


@pytest.mark.slow
def test_restore_refuses_an_unknown_snapshot_and_one_without_inputs(plan, capsys):
    assert main(["snapshot", str(plan), "--label", "plain", "--quiet"]) == 0
    capsys.readouterr()
    before = plan.read_bytes()
    assert main(["restore", str(plan), "plain", "--quiet"]) == 2
    assert "snapshot 'plain' holds no inputs" in capsys.readouterr().err
    assert main(["restore", str(plan), "nope", "--quiet"]) == 2
    assert "there is no snapshot 'nope'" in capsys.readouterr().err
    assert plan.read_bytes() == before


@pytest.mark.slow
def test_the_adoptable_columns_are_all_a_scenario_changes(plan):
    """Undo restores the columns in ADOPTABLE: a scenario may change no other input cell."""
    from sop_xl.plan.adopt import ADOPTABLE
    from sop_xl.plan.context import Context
    from sop_xl.plan.scenario import scenario_context

    changes = pd.DataFrame({"scenario": "x", "change": ["demand", "capacity", "cost"], "target": "*",
                            "factor": 2.0})
    with open_file(plan, writable=False) as book:
        ctx = Context(book)
        ctx.load(k.INPUT_TABLES)
        scen = scenario_context(ctx, changes)
    for name, frame in scen.frames.items():
        before = ctx.frames[name]
        moved = {c for c in frame.columns if not frame[c].equals(before[c])}
        assert moved <= set(ADOPTABLE.get(name, ())), (name, moved)
    assert scen.demand_factors == {"*": 2.0}  # the consensus: SalesOverride and EventUplift of Demand
    assert set(ADOPTABLE[k.DEMAND.name]) == {"sales_override", "event_uplift"}


# ------------------------------------------------------------------------------ buttons
@pytest.mark.slow
def test_adopt_button_adopts_the_settings_scenario(plan, tmp_path):
    wb = load_workbook(plan, keep_vba=True)
    sheet, coord = next(iter(wb.defined_names["Scenario"].destinations))
    wb[sheet][coord.replace("$", "")].value = "Downside"
    book = FakeBook(wb, name=str(tmp_path / "plan.xlsm"))
    line = macros.adopt_scenario(book=book)
    assert line.startswith("Scenario 'Downside' adopted")
    (title, text), = book.app.alerts
    assert text == line and "restore the snapshot 'before adopting Downside" in text
    assert wb[sheet][coord.replace("$", "")].value == "Base"
    assert book.app.status_bar is False

    again = FakeBook(wb, name=str(tmp_path / "plan.xlsm"))  # Scenario is Base now: refused, one dialog
    assert macros.adopt_scenario(book=again) is None
    (title, text), = again.app.alerts
    assert "Base is the plan itself" in text


def _archived_cycles(db) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [str(r[0]) for r in conn.execute("SELECT cycle FROM cycles ORDER BY cycle")]
    finally:
        conn.close()


@pytest.mark.slow
def test_snapshot_archives_beside_the_workbook_or_at_archive_url(plan, tmp_path, capsys):
    assert main(["snapshot", str(plan), "--label", "one", "--quiet"]) == 0
    beside = plan.with_name("plan.archive.sqlite")
    assert "archived cycle 2026-01" in capsys.readouterr().out
    assert _archived_cycles(beside) == ["2026-01-01"]

    elsewhere = tmp_path / "team" / "archive.sqlite"
    elsewhere.parent.mkdir()
    _set_setting(plan, "ArchiveUrl", f"sqlite:///{elsewhere}")
    wb = load_workbook(plan, keep_vba=True)
    book = FakeBook(wb, name=str(plan))
    assert macros.snapshot(book=book).startswith("snapshot '")
    assert book.app.alerts == []  # archived: no dialog
    assert _archived_cycles(elsewhere) == ["2026-01-01"]
    # sop-xl archive without --db goes to ArchiveUrl too (re-archiving the cycle replaces it)
    wb.save(plan)
    assert main(["archive", str(plan), "--quiet"]) == 0
    assert str(elsewhere) in capsys.readouterr().out
    assert _archived_cycles(elsewhere) == ["2026-01-01"]


@pytest.mark.slow
def test_snapshot_is_kept_when_the_archive_fails(plan, tmp_path, capsys):
    _set_setting(plan, "ArchiveUrl", f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'a.sqlite'}")
    assert main(["snapshot", str(plan), "--label", "kept", "--quiet"]) == 0
    assert "warning: not archived" in capsys.readouterr().err
    assert "kept" in set(_table(plan, k.SNAPSHOTS)["version"])
    wb = load_workbook(plan, keep_vba=True)
    book = FakeBook(wb, name=str(plan))
    macros.snapshot(book=book)
    (title, text), = book.app.alerts
    assert "Not archived:" in text


@pytest.mark.slow
def test_new_cycle_button_rolls_with_the_file_the_planner_chose(plan, tmp_path):
    start = pd.Timestamp(_setting(plan, "PlanStart"))
    demand = _table(plan, k.DEMAND)
    closing = demand[pd.to_datetime(demand["period"]) == start]
    csv = tmp_path / "actuals.csv"
    pd.DataFrame({"Item": closing["item"], "Period": f"{start:%Y-%m-%d}",
                  "Qty": np.round(closing["stat_forecast"].astype(float))}).to_csv(csv, index=False)
    wb = load_workbook(plan, keep_vba=True)
    book = FakeBook(wb, name=str(plan))

    assert macros.new_cycle(book=book) is None  # no file chosen: one dialog naming the setting
    (title, text), = book.app.alerts
    assert "Actuals file (named cell ActualsFile)" in text
    book.app.alerts.clear()

    sheet, coord = next(iter(wb.defined_names["ActualsFile"].destinations))
    wb[sheet][coord.replace("$", "")].value = str(csv)  # what SopNewCycle writes after GetOpenFilename
    team = tmp_path / "team.sqlite"
    sheet, coord = next(iter(wb.defined_names["ArchiveUrl"].destinations))
    wb[sheet][coord.replace("$", "")].value = f"sqlite:///{team}"
    roll = macros.new_cycle(book=book)
    assert roll is not None and roll.actuals == len(closing)
    (title, text), = book.app.alerts
    assert f"rolled {start:%Y-%m}" in text and "archived to" in text
    sheet, coord = next(iter(wb.defined_names["PlanStart"].destinations))
    assert pd.Timestamp(wb[sheet][coord.replace("$", "")].value) == start + pd.DateOffset(months=1)
    backup = plan.with_name(f"plan.before-roll-{start:%Y-%m}.xlsm")
    assert pd.Timestamp(_setting(backup, "PlanStart")) == start  # the workbook as it was
    assert _archived_cycles(team) == [f"{start:%Y-%m-%d}"] and not plan.with_name("plan.archive.sqlite").exists()
    actuals = [r for r in wb[k.ACTUALS.sheet].iter_rows(min_row=k.ACTUALS.header_row + 1, values_only=True)
               if r[0] is not None]
    assert sum(1 for r in actuals if pd.Timestamp(r[1]) == start) == len(closing)
