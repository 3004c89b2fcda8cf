"""Ribbon macros, thin: each takes the calling workbook, runs one entry point, reports in Excel.

The VBA ribbon callbacks call these with constant strings, e.g.
``RunPython "import sop_xl.macros as m; m.forecast()"``. ``book`` may be passed explicitly (tests,
or an xlwings Book from a script); by default it is ``xlwings.Book.caller()``.

Every macro goes through :func:`_button`, so every button fails the same way: invalid inputs show
one dialog listing the problems; any other error shows one dialog with one plain line. The error
is NOT re-raised into VBA: xlwings would show its own traceback dialog on top of ours, a second
dialog a planner cannot act on. For support the traceback is kept — printed to stderr (xlwings'
console) and, for runs that write, summarised in an ERROR row of the Log table
(:func:`sop_xl.plan.runlog.recording`). The status bar is cleared in every case.
"""
from __future__ import annotations

import sys
import traceback
from typing import Any, Callable

from sop_xl import contract as k
from sop_xl.archive.from_workbook import snapshot_and_archive
from sop_xl.excel.publish import publish as publish_step
from sop_xl.plan import adopt, pipeline, review
from sop_xl.plan.runlog import failure_line
from sop_xl.plan.validation import Problem, ValidationError, parse_settings
from sop_xl.workbook import for_caller

TITLE = "S&OP"


def _button(label: str, action: Callable[[Any], Any], book=None, failed: Any = None):
    """Run ``action(adapter)`` for the workbook that called; any failure becomes one dialog and
    ``failed`` is returned (None, or False for Validate)."""
    adapter = for_caller(book)
    try:
        return action(adapter)
    except ValidationError as exc:
        adapter.status(None)
        adapter.alert(exc.summary(limit=12), TITLE)
        return failed
    except Exception as exc:  # noqa: BLE001 - a planner sees a short message, not a traceback
        traceback.print_exception(exc, file=sys.stderr)
        adapter.status(None)
        adapter.alert(f"{label} stopped: {failure_line(exc)}", TITLE)
        return failed


def _steps(label: str, steps: list[str], book=None):
    def action(adapter):
        report = pipeline.run(adapter, steps)
        adapter.status(f"S&OP: {'; '.join(report.summary)}"[:250])
        return report
    return _button(label, action, book)


def forecast(book=None):
    return _steps("Forecast", ["forecast"], book)


def balance(book=None):
    return _steps("Balance", ["balance", "exceptions"], book)


def cost_rollup(book=None):
    return _steps("Cost roll-up", ["cost_rollup"], book)


def financials(book=None):
    return _steps("Financials", ["financials", "exceptions"], book)


def run_all(book=None):
    return _steps("Run all", list(pipeline.STEP_ORDER), book)


def validate(book=None):
    def action(adapter):
        pipeline.validate(adapter)
        adapter.alert("All input tables are valid.", TITLE)
        return True
    return _button("Validate", action, book, failed=False)


def scenarios(book=None):
    return _button("Scenarios", review.run_scenarios, book)


def snapshot(book=None):
    """Snapshot the plan in the workbook, then store the cycle in the plan archive (see
    :func:`sop_xl.archive.from_workbook.snapshot_and_archive`)."""
    def action(adapter):
        line, archived = snapshot_and_archive(adapter)
        if not archived.startswith("archived"):  # the snapshot is kept; the archive needs a look
            adapter.alert(f"{line}.\nNot archived: {archived}", TITLE)
        return line
    return _button("Snapshot", action, book)


def adopt_scenario(book=None):
    """Adopt the Settings' Scenario: snapshot, write its changes into the inputs, Scenario = Base, re-plan."""
    def action(adapter):
        line, _version = adopt.adopt_scenario(adapter)
        adapter.alert(line, TITLE)
        return line
    return _button("Adopt scenario", action, book)


def new_cycle(book=None):
    """The monthly roll on the open workbook. The VBA button asked for the actuals file and wrote
    its path into the named cell ActualsFile: a path never travels inside the Python command."""
    def action(adapter):
        from sop_xl.archive.monthly_roll import roll_book

        raw = {"ActualsFile": adapter.read_setting("ActualsFile")} if adapter.has_setting("ActualsFile") else {}
        path = str(parse_settings(raw)[0]["ActualsFile"] or "").strip()
        if not path:
            raise ValidationError([Problem(k.SETTINGS_SHEET, None, None, "Actuals file (named cell ActualsFile)",
                                           "no actuals file is given",
                                           "Click New cycle and choose the CSV or XLSX of the closing month")])
        roll, cycle, written, where, backup = roll_book(adapter, path)
        adapter.alert("\n".join([roll.summary(), *roll.warnings,
                                  f"Cycle {cycle.cycle:%Y-%m} archived to {where}.",
                                  f"Backup of the workbook before the roll: {backup}",
                                  "Run All re-plans the new month; Save keeps the roll."]), TITLE)
        return roll
    return _button("New cycle", action, book)


def publish(book=None):
    def action(adapter):
        result = publish_step(adapter)
        adapter.alert(f"Published: {result.xlsx}" + (f" and {result.pdf}" if result.pdf else ""), TITLE)
        return result
    return _button("Publish", action, book)
