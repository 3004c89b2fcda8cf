"""Publish for review: a values-only .xlsx anyone can open, and a PDF of the dashboard and exceptions.

People in the review read the plan on a Mac, in a browser or on a phone, without Python. The copy
has no VBA, every formula replaced by its value (SOP_ cell functions included, evaluated by our own
Python), and keeps charts, tables and formatting. Headless, LibreOffice recalculates the formulas;
in Excel, xlwings reads the values Excel computed.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import column_index_from_string
from openpyxl.worksheet.formula import ArrayFormula

from sop_xl import contract as k
from sop_xl.plan.runlog import recording

PDF_SHEETS = (k.DASHBOARD_SHEET, k.EXCEPTIONS.sheet)
_CALL = re.compile(r"^=\s*(SOP_[A-Z_]+)\s*\((.*)\)\s*$", re.I | re.S)
_REF = re.compile(r"^(?:(?:'((?:[^']|'')+)'|([A-Za-z0-9_.]+))!)?\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?$")


@dataclass
class Published:
    xlsx: Path
    pdf: Path | None
    formulas: int
    sop_cells: int
    seconds: float

    def __str__(self) -> str:
        pdf = f" and {self.pdf}" if self.pdf else " (no PDF: LibreOffice not installed)"
        return (f"published {self.xlsx}{pdf}: {self.formulas} formulas replaced by values, "
                f"{self.sop_cells} of them SOP_ functions, in {self.seconds:.1f} s")


class PublishError(RuntimeError):
    pass


def _formula_text(value) -> str | None:
    if isinstance(value, ArrayFormula):
        return value.text
    if isinstance(value, str) and value.startswith("="):
        return value
    return None


def _split_args(text: str) -> list[str]:
    args, depth, quote, cur = [], 0, False, ""
    for ch in text:
        if ch == '"':
            quote = not quote
        if not quote and ch == "(":
            depth += 1
        if not quote and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip() or args:
        args.append(cur.strip())
    return args


def evaluate_sop_formula(formula: str, sheet: str, values: dict[str, list[list[Any]]]):
    """Evaluate ``=SOP_NAME(arg, ...)`` whose args are references, numbers, strings or booleans."""
    from sop_xl import udfs

    m = _CALL.match(formula)
    if not m or m.group(1).upper() not in udfs.REGISTRY:
        return "#N/A (not evaluated when publishing)"
    args = []
    for raw in _split_args(m.group(2)):
        if raw == "":
            args.append(None)
        elif raw.startswith('"') and raw.endswith('"'):
            args.append(raw[1:-1].replace('""', '"'))
        elif raw.upper() in ("TRUE", "FALSE"):
            args.append(raw.upper() == "TRUE")
        elif re.fullmatch(r"-?\d+(\.\d*)?([eE][-+]?\d+)?", raw):
            args.append(float(raw))
        else:
            ref = _REF.match(raw)
            if not ref:
                return "#N/A (not evaluated when publishing)"
            src = (ref.group(1) or "").replace("''", "'") or ref.group(2) or sheet
            grid = values.get(src, [])
            c1, r1 = column_index_from_string(ref.group(3)), int(ref.group(4))
            c2 = column_index_from_string(ref.group(5)) if ref.group(5) else c1
            r2 = int(ref.group(6)) if ref.group(6) else r1
            block = []
            for r in range(r1, r2 + 1):
                row = grid[r - 1] if r - 1 < len(grid) else []
                block.append([row[c - 1] if c - 1 < len(row) else None for c in range(c1, c2 + 1)])
            args.append(block)
    return getattr(udfs, m.group(1).upper())(*args)


def computed_values(path: Path, sheets: list[str]) -> dict[str, list[list[Any]]]:
    from sop_xl import libreoffice

    if not libreoffice.available():
        raise PublishError("Publishing a saved workbook needs LibreOffice to compute its formulas "
                           "(Debian: apt-get install libreoffice-calc-nogui python3-uno), or publish from Excel")
    return libreoffice.inspect(path, sheets_for_values=sheets, timeout=300).values


def values_only_copy(source: Path, target: Path, values: dict[str, list[list[Any]]]) -> tuple[int, int]:
    """Write ``target`` (.xlsx) from ``source`` with every formula replaced by its computed value."""
    wb = load_workbook(source)  # keep_vba=False: no VBA in the published copy
    formulas = sop = 0
    spills: list[tuple[Any, int, int, Any]] = []
    for ws in wb.worksheets:
        grid = values.get(ws.title, [])
        for row in ws.iter_rows():
            for cell in row:
                text = _formula_text(cell.value)
                if text is None:
                    continue
                formulas += 1
                if "SOP_" in text.upper():
                    sop += 1
                    result = evaluate_sop_formula(text, ws.title, values)
                    spills.append((ws, cell.row, cell.column, result))
                    continue
                r, c = cell.row - 1, cell.column - 1
                cell.value = grid[r][c] if r < len(grid) and c < len(grid[r]) else None
    for ws, r, c, result in spills:  # a spilled array fills the cells below and to the right
        block = result if isinstance(result, list) else [[result]]
        for i, line in enumerate(block):
            line = line if isinstance(line, list) else [line]
            for j, v in enumerate(line):
                ws.cell(r + i, c + j).value = v
    if k.XLWINGS_CONF_SHEET in wb.sheetnames:  # no Python on the readers' side
        del wb[k.XLWINGS_CONF_SHEET]
    wb.save(target)
    return formulas, sop


def publish(book, out_dir: str | Path | None = None, progress=None) -> Published:
    from sop_xl import libreoffice
    from sop_xl.workbook.safe_io import atomic_save

    source_path = Path(book.path)
    folder = Path(out_dir) if out_dir else source_path.parent
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    xlsx = folder / f"{source_path.stem}_review_{stamp}.xlsx"
    pdf = xlsx.with_suffix(".pdf")
    with recording(book, "publish") as rec:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmpdir:
            snapshot = Path(tmpdir) / f"current{source_path.suffix or '.xlsm'}"
            book.status("Publishing: saving a copy …")
            book.save_copy(snapshot)
            book.status("Publishing: computing values …")
            values = _all_values(book, snapshot)
            book.status("Publishing: writing the values-only copy …")
            counts: list[int] = []
            atomic_save(xlsx, lambda tmp: counts.extend(values_only_copy(snapshot, tmp, values)), backup=False)
        made_pdf = None
        if libreoffice.available():
            book.status("Publishing: PDF of the dashboard and exceptions …")
            libreoffice.convert(xlsx, pdf, sheets=list(PDF_SHEETS), timeout=300)
            made_pdf = pdf
        result = Published(xlsx, made_pdf, counts[0], counts[1], rec.elapsed())
        rec.message = str(result)
    return result


def _all_values(book, snapshot: Path) -> dict[str, list[list[Any]]]:
    """Values of every sheet: formula results from the spreadsheet application, the rest as stored."""
    wb = load_workbook(snapshot, read_only=True, data_only=False)
    try:
        stored = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    finally:
        wb.close()
    with_formulas = [name for name, grid in stored.items() if any(_formula_text(v) for row in grid for v in row)]
    computed = book.live_values(with_formulas)  # in Excel: what Excel computed
    if computed is None:  # a file: LibreOffice computes the snapshot
        computed = computed_values(snapshot, with_formulas)
    stored.update({name: grid for name, grid in computed.items() if name in with_formulas})
    return stored


__all__ = ["publish", "values_only_copy", "evaluate_sop_formula", "Published", "PublishError"]
