"""Ribbon macros, thin: each takes the calling workbook, runs the pipeline, reports in Excel.

The VBA ribbon callbacks call these with constant strings, e.g.
``RunPython "import sop_xl.macros as m; m.forecast()"``. ``book`` may be passed explicitly (tests,
or an xlwings Book from a script); by default it is ``xlwings.Book.caller()``.
"""
from __future__ import annotations

from sop_xl.plan import pipeline, review
from sop_xl.excel.publish import publish as publish_step
from sop_xl.workbook import for_caller
from sop_xl.plan.validation import ValidationError

TITLE = "S&OP"


def _run(steps: list[str], book=None):
    adapter = for_caller(book)
    try:
        report = pipeline.run(adapter, steps)
    except ValidationError as exc:
        adapter.status(None)
        adapter.alert(exc.summary(limit=12), TITLE)
        return None
    except Exception as exc:  # noqa: BLE001 - a planner sees a short message, not a traceback
        adapter.status(None)
        adapter.alert(f"{type(exc).__name__}: {exc}", TITLE)
        raise
    adapter.status(f"S&OP: {'; '.join(report.summary)}"[:250])
    return report


def forecast(book=None):
    return _run(["forecast"], book)


def balance(book=None):
    return _run(["balance", "exceptions"], book)


def cost_rollup(book=None):
    return _run(["cost_rollup"], book)


def financials(book=None):
    return _run(["financials", "exceptions"], book)


def run_all(book=None):
    return _run(list(pipeline.STEP_ORDER), book)


def validate(book=None):
    adapter = for_caller(book)
    try:
        pipeline.validate(adapter)
    except ValidationError as exc:
        adapter.alert(exc.summary(limit=12), TITLE)
        return False
    adapter.alert("All input tables are valid.", TITLE)
    return True


def scenarios(book=None):
    adapter = for_caller(book)
    return review.run_scenarios(adapter)


def snapshot(book=None):
    adapter = for_caller(book)
    return review.take_snapshot(adapter)


def publish(book=None):
    adapter = for_caller(book)
    result = publish_step(adapter)
    adapter.alert(f"Published: {result.xlsx}" + (f" and {result.pdf}" if result.pdf else ""), TITLE)
    return result
