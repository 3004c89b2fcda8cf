"""The ribbon path: macros -> LiveBook (xlwings object model) -> pipeline, on an xlwings stand-in.

Real Excel is not available here; tests/fake_xlwings.py mimics the xlwings calls LiveBook makes.
"""
import pandas as pd
import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import macros
from sop_xl.demo_workbook import make_demo_workbook
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
