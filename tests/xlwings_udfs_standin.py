"""xlwings' own ``xlwings/udfs.py`` loaded on Linux, for the tests and bench/cell.py.

It imports pywin32 at the top, so it is loaded with three empty stand-in modules for pythoncom,
pywintypes and win32com.client: its module level only names them, and the parts used here -
``xlfunc``/``xlarg`` (the decorators), ``generate_vba_wrapper`` and the background machinery
(``async_thread`` on ``com_executor``, the thread pool xlwings runs async functions on) - never call
them. Excel's side of a COM call is what the caller stubs.
"""
from __future__ import annotations

import importlib.util
import sys
import types

STANDINS = ("pythoncom", "pywintypes", "win32com", "win32com.client")


def load_xlwings_udfs(setitem=None) -> types.ModuleType:
    """A fresh ``xlwings.udfs`` module. ``setitem(mapping, key, value)`` installs the stand-ins and
    the module in ``sys.modules`` (pytest's ``monkeypatch.setitem``, undone after the test; by
    default they simply stay, as a bench process wants)."""
    import xlwings

    put = setitem or (lambda mapping, key, value: mapping.__setitem__(key, value))
    for name in STANDINS:
        put(sys.modules, name, types.ModuleType(name))
    sys.modules["pythoncom"].CoInitialize = lambda: None  # the initializer of xlwings' thread pool
    sys.modules["pywintypes"].com_error = type("com_error", (Exception,), {})
    sys.modules["win32com.client"].Dispatch = lambda *a: None
    spec = importlib.util.spec_from_file_location("xlwings.udfs", xlwings.__file__.replace("__init__.py", "udfs.py"))
    module = importlib.util.module_from_spec(spec)
    put(sys.modules, "xlwings.udfs", module)
    spec.loader.exec_module(module)
    return module
