"""The template's VBA UDF wrappers against xlwings' own generator, and the async SOP_FORECAST_TABLE.

xlwings/udfs.py is loaded on Linux with stand-ins for pywin32 (tests/xlwings_udfs_standin.py). Our UDFs are then
declared through xlwings' real ``xw.func``/``xw.arg`` (as on Windows) and xlwings'
``generate_vba_wrapper`` writes their module, which must equal what the template holds.
"""
from __future__ import annotations

import importlib
import io
import threading
from datetime import datetime

import pytest

from sop_xl import udfs
from sop_xl.template import udf_vba
from tests.xlwings_udfs_standin import load_xlwings_udfs


@pytest.fixture
def udfs_as_on_windows(monkeypatch):
    """sop_xl.udfs declared through xlwings' real decorators, and xlwings.udfs itself."""
    import xlwings as xw

    xu = load_xlwings_udfs(monkeypatch.setitem)
    monkeypatch.setattr(xw, "func", xu.xlfunc)
    monkeypatch.setattr(xw, "arg", xu.xlarg)
    try:
        yield importlib.reload(udfs), xu
    finally:
        monkeypatch.undo()
        importlib.reload(udfs)


class _Workbook:  # what generate_vba_wrapper reads of the COM workbook: its name
    Name = "SOP_Template.xlsm"


def test_wrappers_are_what_xlwings_import_functions_writes(udfs_as_on_windows):
    mod, xu = udfs_as_on_windows
    out = io.StringIO()
    xu.generate_vba_wrapper(udf_vba.PY_MODULE, mod, out, _Workbook())
    ours = udf_vba.wrapper_source()
    head, _, body = ours.partition("'Adjust when using outside of Excel\n")
    assert body == out.getvalue()  # every function, byte for byte
    assert head.endswith('#Const App = "Microsoft Excel" ')  # the constant xlwings' module header declares
    assert body.count("\nFunction ") + body.startswith("Function ") == len(mod.REGISTRY) == 8


ENGINE_CELLS = {"SOP_FORECAST", "SOP_FORECAST_BAND", "SOP_MODEL", "SOP_SAFETY_STOCK"}  # one history each


def test_engine_functions_run_in_the_background(udfs_as_on_windows):
    mod, _ = udfs_as_on_windows
    modes = {name: getattr(mod, name).__xlfunc__["async_mode"] for name in mod.REGISTRY}
    assert modes == {name: spec.async_mode for name, spec in mod.REGISTRY.items()}  # what xlwings sees = the registry
    background = {name for name, m in modes.items() if m == "threading"}
    assert background == ENGINE_CELLS | {"SOP_FORECAST_TABLE"}
    assert {modes[n] for n in set(modes) - background} == {None}  # accuracy and BOM answer at once


@pytest.mark.parametrize("value, expected", [("immediate", None), (" Immediate ", None), ("background", "threading"),
                                             ("", "threading"), ("nonsense", "threading")])
def test_cell_mode_setting(udfs_as_on_windows, monkeypatch, value, expected):
    """SOP_XL_CELL_MODE=immediate makes the engine's single-history functions ordinary synchronous
    ones (Excel waits for each); the table stays in the background; anything else: the default."""
    monkeypatch.setenv("SOP_XL_CELL_MODE", value)
    mod = importlib.reload(udfs)
    modes = {name: getattr(mod, name).__xlfunc__["async_mode"] for name in mod.REGISTRY}
    assert {modes[n] for n in ENGINE_CELLS} == {expected}
    assert modes["SOP_FORECAST_TABLE"] == "threading"


def test_async_mode_other_than_threading_is_refused():
    from sop_xl.excel.udf import udf

    with pytest.raises(ValueError, match="threading"):
        udf("x", args={}, async_mode="asyncio")


# ---------------------------------------------------------------------------- async: worker threads
def _table_args(n_items: int, months: int = 30):
    items, periods, qty = [], [], []
    for i in range(n_items):
        for m in range(months):
            items.append([f"IT{i:02d}"])
            periods.append([datetime(2022 + m // 12, m % 12 + 1, 1)])
            qty.append([float(100 + 10 * i + (m % 12) * (i + 1) + (m * 7 % 5))])
    return items, periods, qty


def test_forecast_table_gives_the_same_table_from_concurrent_worker_threads():
    """xlwings runs an async UDF on its worker pool while Excel goes on: several recalculations may
    overlap (a cell edited twice, two tables). Each must get exactly the sequential answer."""
    calls = [(_table_args(3), 6), (_table_args(4), 6), (_table_args(3), 9), (_table_args(2), 6)]
    udfs.clear_cache()
    expected = [udfs.SOP_FORECAST_TABLE(*a, h) for a, h in calls]
    assert all(isinstance(t, list) and t[0][:3] == ["Item", "Period", "Forecast"] for t in expected)
    udfs.clear_cache()
    got: dict[int, object] = {}
    threads = [threading.Thread(target=lambda i=i, a=a, h=h: got.__setitem__(i, udfs.SOP_FORECAST_TABLE(*a, h)))
               for i, (a, h) in enumerate(calls * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [got[i] for i in range(len(calls))] == expected
    assert [got[i + len(calls)] for i in range(len(calls))] == expected
