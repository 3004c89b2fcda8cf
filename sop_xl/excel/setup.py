"""Point a workbook at this Python, and repair an xlwings version mismatch in its VBA.

The xlwings VBA module names its DLL by version (xlwings64-0.37.8.dll): if the module in a user's
copy and the installed xlwings differ, every call fails in Excel. ``setup_workbook`` detects that
and rewrites the VBA project with the installed xlwings' modules and ours.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import xlwings

from sop_xl import contract as k
from sop_xl.workbook import vba

OUR_MODULES = {"xlwings", "Dictionary", "xlwings_udfs", "SopUdfRegister", "SopRibbon", "SopHelpers"}


def default_interpreter() -> str:
    exe = Path(sys.executable)
    if os.name == "nt":
        windowless = exe.with_name("pythonw.exe")  # no console window flashing on every macro
        if windowless.exists():
            return str(windowless)
    return str(exe)


def module_version(path: Path) -> str | None:
    modules = vba.read_vba_modules(path)
    if "xlwings" not in modules:
        return None
    return vba.xlwings_version_in_module(modules["xlwings"])


def repair_vba(path: Path) -> str:
    """Rewrite the VBA project from the installed xlwings and our sources; refuse if foreign code would be lost."""
    from sop_xl.template.builder import vba_modules

    present = vba.read_vba_modules(path)
    ours = {m.name for m in vba_modules()}
    foreign = [name for name, code in present.items()
               if name not in ours | OUR_MODULES and _has_code(code)]
    if foreign:
        raise RuntimeError(f"{path.name} has VBA of its own ({', '.join(sorted(foreign))}); export it, "
                           f"repair, and import it again — not repaired automatically")
    vba.write_vba_project(path, vba_modules(), timestamp=None)
    return f"VBA project rewritten with xlwings {xlwings.__version__}"


def _has_code(code: str) -> bool:
    lines = [ln.strip() for ln in code.splitlines()]
    return any(ln and not ln.startswith("'") and not ln.lower().startswith("option ") for ln in lines)


def write_interpreter(path: Path, python: str) -> str:
    """Write ``python`` as the interpreter into the xlwings.conf sheet (the caller holds the lock)."""
    from openpyxl import load_workbook

    from sop_xl.workbook import ribbon
    from sop_xl.workbook.save import save_workbook

    key = "Interpreter_Win" if os.name == "nt" or python.lower().endswith(".exe") else "Interpreter_Mac"
    custom_ui = ribbon.read_custom_ui(path)
    wb = load_workbook(path, keep_vba=True)
    if k.XLWINGS_CONF_SHEET not in wb.sheetnames:
        ws = wb.create_sheet(k.XLWINGS_CONF_SHEET)
    else:
        ws = wb[k.XLWINGS_CONF_SHEET]
    row = next((r for r in range(1, ws.max_row + 2) if str(ws.cell(r, 1).value or "").upper() == key.upper()), None)
    if row is None:  # keys must stay contiguous from A1: append below the last one
        row = next(r for r in range(1, ws.max_row + 2) if ws.cell(r, 1).value in (None, ""))
        ws.cell(row, 1, key)
    ws.cell(row, 2, python)
    drop_empty_keys(ws)
    save_workbook(wb, path, custom_ui, backup=True)
    return f"{key} = {python} (sheet {k.XLWINGS_CONF_SHEET})"


def drop_empty_keys(ws) -> list[str]:
    """Only keys that are set: a key with an empty value (older templates had empty Interpreter_Win,
    Interpreter_Mac and PYTHONPATH rows) overrides the user's own xlwings.conf file with nothing.
    Returns the keys dropped."""
    rows = []
    r = 1
    while ws.cell(r, 1).value not in (None, ""):
        rows.append([ws.cell(r, c).value for c in (1, 2, 3)])
        r += 1
    kept = [row for row in rows if row[1] not in (None, "")]
    if len(kept) == len(rows):
        return []
    for i in range(len(rows)):
        for c, value in zip((1, 2, 3), kept[i] if i < len(kept) else (None, None, None)):
            ws.cell(i + 1, c).value = value
    return [str(row[0]) for row in rows if row[1] in (None, "")]


def setup_workbook(path: Path, python: str | None = None, out: Path | None = None) -> list[str]:
    """Set up ``path`` (or a copy of it at ``out``) for this Python. Like every writer, under the
    workbook's lock: a workbook another run is updating is refused (WorkbookLocked) and left untouched."""
    from sop_xl.workbook.locking import WorkbookLock

    lines = []
    target = Path(out) if out else Path(path)
    with WorkbookLock(target):
        if out:
            shutil.copyfile(path, target)
            lines.append(f"Copied to {target}")
        path = target
        found = module_version(path)
        if found is None:
            lines.append("No xlwings VBA module in this workbook: " + repair_vba(path))
        elif found != xlwings.__version__:
            lines.append(f"xlwings VBA module {found} does not match installed xlwings {xlwings.__version__}: "
                         + repair_vba(path))
        else:
            lines.append(f"xlwings VBA module {found} matches the installed xlwings")
        lines.append(write_interpreter(path, python or default_interpreter()))
    return lines
