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
    assert len(targets) == 11
    wb = load_workbook(filled, keep_vba=True)
    book = FakeBook(wb, name=str(tmp_path / "plan.xlsm"))
    order = ["validate", "forecast", "balance", "cost_rollup", "financials", "run_all", "scenarios",
             "snapshot", "publish"]
    # adopt_scenario needs a scenario chosen and new_cycle an actuals file: tests/test_adopt.py runs them.
    assert sorted(order + ["adopt_scenario", "new_cycle"]) == sorted(targets)
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


def test_both_adapters_implement_every_member_of_the_interface(filled):
    """Callers use the adapter through WorkbookAdapter only (no getattr probing): FileBook and LiveBook
    must offer every member, each method accepting every call the interface allows."""
    import inspect

    from sop_xl.plan.book import WorkbookAdapter
    from sop_xl.workbook.file_book import FileBook
    from sop_xl.workbook.live_book import LiveBook

    methods = {n for n, v in vars(WorkbookAdapter).items() if inspect.isfunction(v) and not n.startswith("_")}
    attributes = set(WorkbookAdapter.__annotations__)
    # the members callers used to reach with getattr are part of the interface now
    assert {"setting_address", "alert", "save_copy", "live_values"} <= methods and "path" in attributes
    file_book = FileBook(filled, writable=False)
    live_book = LiveBook(FakeBook(load_workbook(filled, keep_vba=True)))
    try:
        for adapter in (file_book, live_book):
            cls = type(adapter).__name__
            for name in attributes:
                assert hasattr(adapter, name), f"{cls} has no attribute {name}"
            for name in methods:
                impl = getattr(type(adapter), name, None)
                assert callable(impl), f"{cls} has no method {name}"
                params = list(inspect.signature(getattr(WorkbookAdapter, name)).parameters.values())[1:]
                required = [p for p in params if p.default is p.empty]
                try:
                    inspect.signature(impl).bind(adapter, *[None] * len(required))
                    inspect.signature(impl).bind(adapter, **{p.name: None for p in params})
                except TypeError as exc:
                    raise AssertionError(f"{cls}.{name} does not accept the interface's arguments: {exc}")
        assert file_book.setting_address(k.LAST_RUN_NAME) == live_book.setting_address(k.LAST_RUN_NAME)
        assert file_book.live_values([k.START_SHEET]) is None  # a file: LibreOffice computes
        assert live_book.live_values([k.START_SHEET])[k.START_SHEET]
    finally:
        file_book.close()


def _boom(*_args, **_kw):
    raise ZeroDivisionError("division by zero\nsecond line a planner should not see")


def _fail_step(step):
    def inject(monkeypatch):
        from sop_xl.plan.steps import STEPS
        monkeypatch.setitem(STEPS, step, (_boom, *STEPS[step][1:]))
    return inject


FAILURES = {  # macro -> how its own work is made to fail (an unexpected error, not invalid input)
    "forecast": _fail_step("forecast"),
    "balance": _fail_step("balance"),
    "cost_rollup": _fail_step("cost_rollup"),
    "financials": _fail_step("financials"),
    "run_all": _fail_step("forecast"),
    "scenarios": lambda mp: mp.setattr("sop_xl.plan.review.tables_for", _boom),
    "snapshot": lambda mp: mp.setattr("sop_xl.plan.review.current_plan", _boom),
    "publish": lambda mp: mp.setattr("sop_xl.excel.publish.values_only_copy", _boom),
    "validate": lambda mp: mp.setattr("sop_xl.plan.context.Context.load", _boom),
}
LABELS = {"forecast": "Forecast", "balance": "Balance", "cost_rollup": "Cost roll-up", "financials": "Financials",
          "run_all": "Run all", "scenarios": "Scenarios", "snapshot": "Snapshot", "publish": "Publish",
          "validate": "Validate"}
LOG_STEP = {"forecast": "forecast", "balance": "balance, exceptions", "cost_rollup": "cost_rollup",
            "financials": "financials, exceptions", "scenarios": "scenarios", "snapshot": "snapshot",
            "publish": "publish"}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_a_failing_macro_shows_one_plain_dialog(filled, tmp_path, monkeypatch, capsys, name):
    """Every button fails the same way: one dialog with one line, no traceback, the status bar cleared,
    nothing raised into VBA; the traceback stays on stderr and (runs that write) an ERROR row in the Log."""
    FAILURES[name](monkeypatch)
    wb = load_workbook(filled, keep_vba=True)
    book = FakeBook(wb, name=str(tmp_path / "plan.xlsm"))
    log_before = len(_frame(wb, k.LOG))
    result = getattr(macros, name)(book=book)  # returns instead of raising
    assert result is (False if name == "validate" else None)
    (title, text), = book.app.alerts
    assert title == "S&OP"
    assert text == f"{LABELS[name]} stopped: ZeroDivisionError: division by zero"
    assert book.app.status_bar is False
    assert "Traceback" in capsys.readouterr().err and "_boom" not in text
    log = _frame(wb, k.LOG)
    if name == "validate":  # reads only: nothing to record
        assert len(log) == log_before
        return
    from sop_xl.plan.pipeline import STEP_ORDER

    step = ", ".join(STEP_ORDER) if name == "run_all" else LOG_STEP[name]
    assert len(log) == log_before + 1
    row = log.iloc[-1]
    assert (row["Step"], row["Status"]) == (step, "ERROR")
    assert row["Message"].startswith("ZeroDivisionError: division by zero (at test_live_adapter.py:")
    sheet, coord = next(iter(wb.defined_names[k.LAST_RUN_NAME].destinations))
    assert f"{step}: ERROR after" in wb[sheet][coord.replace("$", "")].value
