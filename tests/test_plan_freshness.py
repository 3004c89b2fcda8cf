"""No stale outputs: stamps say which run computed a table from which inputs; changed inputs mark it STALE."""
from __future__ import annotations

from sop_xl import contract as k
from sop_xl.plan import freshness
from sop_xl.plan.pipeline import run
from sop_xl.workbook import open_file

from . import workbooks as W


def _stamp(path, table):
    with open_file(path) as book:
        return book.read_setting(freshness.stamp_name(table))


def _run(path, steps):
    with open_file(path) as book:
        report = run(book, steps)
        book.save()
    return report


def test_unchanged_inputs_keep_outputs_current_and_a_changed_input_marks_them_stale(tmp_path):
    path = W.demo_xlsx(tmp_path)
    assert _stamp(path, k.COST_ROLLUP) == "not computed yet"
    _run(path, ["cost_rollup"])
    first = _stamp(path, k.COST_ROLLUP)
    assert first.startswith("Current · computed ") and " by cost_rollup · inputs Items#" in first
    assert "Costs#" in first and "BOM#" in first

    # Another step reads Items again from the saved file: same fingerprint, nothing is stale.
    report = _run(path, ["exceptions"])
    assert _stamp(path, k.COST_ROLLUP) == first
    assert not [w for w in report.warnings if "stale" in w]

    # A planner edits Items: the roll-up computed from the old Items is now stale, and says why.
    W.set_cells(path, k.ITEMS.sheet, {W.coordinate(k.ITEMS, 0, "description")[1]: "renamed part"})
    report = _run(path, ["exceptions"])
    stale = _stamp(path, k.COST_ROLLUP)
    assert stale.startswith("STALE since ") and "Items changed" in stale and "run cost rollup again" in stale
    assert any(w.startswith("CostRollup is stale: Items changed") for w in report.warnings)
    assert _stamp(path, k.EXCEPTIONS).startswith("Current")  # rewritten in that run

    _run(path, ["cost_rollup"])
    assert _stamp(path, k.COST_ROLLUP).startswith("Current")


def test_fingerprint_ignores_formula_columns_and_sees_typed_values():
    import pandas as pd
    frame = pd.DataFrame({"item": ["A"], "period": [pd.Timestamp("2026-01-01")], "stat_forecast": [1.0],
                          "sales_override": [None], "event_uplift": [0.0], "consensus": [None]})
    base = freshness.fingerprint(frame, k.DEMAND)
    assert freshness.fingerprint(frame.assign(consensus=[5.0]), k.DEMAND) == base
    assert freshness.fingerprint(frame.assign(sales_override=[5.0]), k.DEMAND) != base


def test_the_dashboard_counts_stale_stamps():
    from sop_xl.template.dashboard import kpis
    label, formula, _ = kpis()[-1]
    assert label == "Stale outputs"
    for table in freshness.STAMPED:
        assert f'COUNTIF({freshness.stamp_name(table)},"STALE*")' in formula


def test_an_input_written_by_a_run_has_the_same_fingerprint_when_read_back(demo_workbook):
    """The demo's Forecast step wrote Demand and Balance stamped its outputs with Demand's fingerprint
    in memory; read back from the saved file, Demand must fingerprint the same (floats keep about 15
    digits in the file), or the next run would call the plan stale when nobody changed anything."""
    from openpyxl import load_workbook

    from sop_xl.plan.context import Context
    from sop_xl.plan.freshness import fingerprint, parse, stamp_name
    from sop_xl.workbook import open_file

    wb = load_workbook(demo_workbook, read_only=False)
    (sheet, coord), = wb.defined_names[stamp_name(k.SUPPLY_PLAN)].destinations
    stamp = parse(wb[sheet][coord.replace("$", "")].value)
    with open_file(demo_workbook, writable=False) as book:
        ctx = Context(book)
        ctx.load((k.ITEMS, k.DEMAND, k.ACTUALS))
        for table in (k.DEMAND, k.ACTUALS):
            assert fingerprint(ctx.frames[table.name], table) == stamp["inputs"][table.sheet], table.name


def test_family_pages_show_one_stamp_that_goes_stale_with_their_inputs(tmp_path):
    """The family pages are stamped like a table (named cell StampFamilyPages on Start), each page shows
    that stamp in its title row, and a changed input marks them STALE until a planning run rewrites them."""
    from openpyxl import load_workbook

    from sop_xl.plan.family_layout import is_family_page

    path = W.demo_xlsx(tmp_path)
    pages = freshness.FAMILY_PAGES
    assert _stamp(path, pages) == "not computed yet"
    _run(path, ["forecast", "balance"])
    first = _stamp(path, pages)
    assert first.startswith("Current · computed ") and " by balance · inputs Items#" in first and "Demand#" in first
    wb = load_workbook(path)
    shown = [wb[n] for n in wb.sheetnames if is_family_page(n, wb[n]["A1"].value)]
    assert len(shown) >= 2
    for ws in shown:  # the stamp in the title row (printed on every page), right of the title
        cells = [c for c in ws[1] if c.value == "=StampFamilyPages"]
        assert len(cells) == 1 and cells[0].column > 1, ws.title

    report = _run(path, ["cost_rollup"])  # reads Items as saved: nothing changed, nothing stale
    assert _stamp(path, pages) == first and not [w for w in report.warnings if "Family pages" in w]

    W.set_cells(path, k.ITEMS.sheet, {W.coordinate(k.ITEMS, 0, "description")[1]: "renamed part"})
    report = _run(path, ["cost_rollup"])  # does not write the pages
    stale = _stamp(path, pages)
    assert stale.startswith("STALE since ") and "Items changed" in stale and "run balance again" in stale
    assert any(w.startswith("Family pages is stale: Items changed") for w in report.warnings)

    _run(path, ["exceptions"])  # a planning step rewrites the pages
    assert _stamp(path, pages).startswith("Current · computed ") and " by exceptions · " in _stamp(path, pages)
