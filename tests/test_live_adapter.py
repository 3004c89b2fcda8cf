"""The ribbon path: macros -> LiveBook (xlwings object model) -> pipeline, on an xlwings stand-in.

Real Excel is not available here; tests/fake_xlwings.py mimics the xlwings calls LiveBook makes.
"""
import pandas as pd
import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import macros
from sop_xl.demo.workbook import make_demo_workbook
from tests.fake_xlwings import FakeBook


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    return make_demo_workbook(tmp_path_factory.mktemp("live") / "plan.xlsm")


def _frame(wb, table):
    ws = wb[table.sheet]
    rows = list(ws.iter_rows(min_row=table.header_row, values_only=True))
    return pd.DataFrame(rows[1:], columns=rows[0][: len(rows[0])]).dropna(how="all")


def test_ribbon_macros_run_the_pipeline_through_the_xlwings_object_model(filled):
    wb = load_workbook(filled, keep_vba=True)
    book = FakeBook(wb)
    report = macros.cost_rollup(book=book)
    assert report is not None and report.steps == ["cost_rollup"]
    roll = _frame(wb, k.COST_ROLLUP)
    assert len(roll) == 160 and (roll["UnitCost"] > 0).any()
    assert any(s and "Cost rollup" in str(s) for s in book.app.status_history)  # progress shown
    assert book.app.status_bar.startswith("S&OP: cost roll-up")
    log = _frame(wb, k.LOG)
    assert list(log["Step"]) == ["cost_rollup"]
    assert book.app.alerts == []


def test_invalid_input_shows_a_dialog_and_writes_nothing(filled):
    wb = load_workbook(filled, keep_vba=True)
    ws = wb[k.ROUTING.sheet]
    ws.cell(k.ROUTING.header_row + 1, 1).value = "NO_SUCH_ITEM"
    before = [[c.value for c in row] for row in wb[k.COST_ROLLUP.sheet].iter_rows()]
    book = FakeBook(wb)
    assert macros.balance(book=book) is None
    (title, text), = book.app.alerts
    assert title == "S&OP"
    assert "sheet 'Routing', table tblRouting, row 5, column Item" in text and "NO_SUCH_ITEM" in text
    assert [[c.value for c in row] for row in wb[k.COST_ROLLUP.sheet].iter_rows()] == before
    assert book.app.status_bar is False


@pytest.mark.slow  # every step, scenarios and publish on the full demo company
def test_every_ribbon_button_has_a_working_macro(filled, tmp_path):
    """Each RunPython target runs on the stand-in: progress in the status bar and a Log row each."""
    import re

    from sop_xl.workbook import vba
    from sop_xl.template.builder import REPO_TEMPLATE

    code = vba.read_vba_modules(REPO_TEMPLATE)["SopRibbon"]
    targets = re.findall(r'^\s*RunPython "import sop_xl\.macros as m; m\.(\w+)\(\)"', code, flags=re.M)
    assert len(targets) == 9
    wb = load_workbook(filled, keep_vba=True)
    book = FakeBook(wb, name=str(tmp_path / "plan.xlsm"))
    order = ["validate", "forecast", "balance", "cost_rollup", "financials", "run_all", "scenarios",
             "snapshot", "publish"]
    assert sorted(order) == sorted(targets)
    for name in order:
        book.app.status_history.clear()
        result = getattr(macros, name)(book=book)
        assert result is not None and result is not False, name
        if name != "validate":
            assert any(s for s in book.app.status_history), f"{name}: no progress shown"
    steps = list(_frame(wb, k.LOG)["Step"])
    for step in ("forecast", "balance", "cost_rollup", "financials", "exceptions", "scenarios", "snapshot",
                 "publish"):
        assert step in steps, step
    # Two dialogs and no error dialog: validate's "valid" and publish's "Published".
    texts = [text for _t, text in book.app.alerts]
    assert len(texts) == 2 and "valid" in texts[0] and "Published" in texts[1], texts
    assert list(tmp_path.glob("plan_review_*.xlsx")), "published copy beside the workbook"
