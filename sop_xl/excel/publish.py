"""Publish for review: a values-only .xlsx of the review sheets anyone can open, and a PDF of the
review pages (dashboard, family pages, decisions, financials, scenarios, plan changes).

People in the review read the plan on a Mac, in a browser or on a phone, without Python. The copy
has no VBA, every formula replaced by its value (SOP_ cell functions included, evaluated by our own
Python), and keeps charts, tables and formatting. Headless, LibreOffice recalculates the formulas;
in Excel, xlwings reads the values Excel computed.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.formula.tokenizer import Token, Tokenizer
from openpyxl.utils import range_boundaries
from openpyxl.worksheet.formula import ArrayFormula

from sop_xl import contract as k
from sop_xl.plan.family_layout import is_family_page
from sop_xl.plan.runlog import recording

# What the meeting reads. Inputs and the engine's working tables stay home unless asked for.
REVIEW_SHEETS = (k.START_SHEET, k.DASHBOARD_SHEET, k.EXCEPTIONS.sheet, k.FINANCIALS.sheet, k.UNMET.sheet,
                 k.BOTTLENECKS.sheet, k.SCENARIO_RESULTS.sheet, k.SCENARIO_DIFFS.sheet, k.PLAN_CHANGES.sheet)
# The monthly scenario differences (ScenarioDiffs, many pages) are in the copy, not in the PDF. The family
# pages (made by the run, one per family: plan/family_layout.py) are in both.
PDF_SHEETS = (k.DASHBOARD_SHEET, k.EXCEPTIONS.sheet, k.FINANCIALS.sheet, k.SCENARIO_RESULTS.sheet,
              k.PLAN_CHANGES.sheet)


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


NOT_EVALUATED = "#N/A (not evaluated when publishing)"


class _NotEvaluable(Exception):
    """The formula is more than one SOP_ call on plain arguments: left as #N/A in the copy."""


def evaluate_sop_formula(formula: str, sheet: str, values: dict[str, list[list[Any]]]):
    """Evaluate ``=SOP_NAME(arg, ...)`` whose args are references, numbers, strings or booleans, or
    ``=IFERROR(SOP_NAME(...), fallback)`` (the guard that keeps the cell readable without the add-in).

    openpyxl's Tokenizer splits the formula (quoted sheet names, strings holding commas or
    parentheses, nested calls); a formula that is anything else than one SOP_ call on such arguments
    (an operator, another function, a defined name) is not evaluated.
    """
    tokens = [t for t in Tokenizer(formula).items if t.type != Token.WSPACE]
    try:
        if tokens and tokens[0].type == Token.FUNC and tokens[0].value.upper() == "IFERROR(":
            args, end = _arguments(tokens, 1)
            if end != len(tokens) or len(args) != 2:
                raise _NotEvaluable
            try:
                result = _call(args[0], sheet, values)
            except _NotEvaluable:
                raise
            except Exception:  # what IFERROR is for: the function failed, the fallback shows
                return _argument(args[1], sheet, values)
            return result
        return _call(tokens, sheet, values)
    except _NotEvaluable:
        return NOT_EVALUATED


def _call(tokens: list, sheet: str, values: dict[str, list[list[Any]]]):
    from sop_xl import udfs

    if not tokens or tokens[0].type != Token.FUNC or tokens[0].subtype != Token.OPEN:
        raise _NotEvaluable
    name = tokens[0].value[:-1].upper()
    if not name.startswith("SOP_") or name not in udfs.REGISTRY:
        raise _NotEvaluable
    args, end = _arguments(tokens, 1)
    if end != len(tokens):  # something after the call, e.g. =SOP_X(A1)+1
        raise _NotEvaluable
    args = [_argument(arg, sheet, values) for arg in args]
    return getattr(udfs, name)(*args)


def _arguments(tokens: list, at: int) -> tuple[list[list], int]:
    """The argument token lists of the call whose opening token precedes ``at``, and the index after
    its closing parenthesis."""
    args: list[list] = []
    current: list = []
    depth = 0
    for i in range(at, len(tokens)):
        token = tokens[i]
        if token.subtype == Token.OPEN:
            depth += 1
        elif token.subtype == Token.CLOSE:
            if depth == 0:
                if current or args:
                    args.append(current)
                return args, i + 1
            depth -= 1
        elif token.type == Token.SEP and token.subtype == Token.ARG and depth == 0:
            args.append(current)
            current = []
            continue
        current.append(token)
    raise _NotEvaluable  # unbalanced


def _argument(tokens: list, sheet: str, values: dict[str, list[list[Any]]]):
    """One argument's value: a block of cell values for a reference, else a number, string or boolean."""
    while (len(tokens) >= 2 and tokens[0].type == Token.PAREN and tokens[0].subtype == Token.OPEN
           and tokens[-1].type == Token.PAREN and tokens[-1].subtype == Token.CLOSE):
        tokens = tokens[1:-1]  # (A1:B2) is A1:B2
    sign = 1.0
    if len(tokens) == 2 and tokens[0].type == Token.OP_PRE and tokens[0].value in "+-":
        sign = -1.0 if tokens[0].value == "-" else 1.0
        tokens = tokens[1:]
        if tokens[0].subtype != Token.NUMBER:
            raise _NotEvaluable
    if not tokens:
        return None
    if len(tokens) != 1 or tokens[0].type != Token.OPERAND:
        raise _NotEvaluable  # an operator or a nested function
    token = tokens[0]
    if token.subtype == Token.NUMBER:
        return sign * float(token.value)
    if token.subtype == Token.TEXT:
        return token.value[1:-1].replace('""', '"')
    if token.subtype == Token.LOGICAL:
        return token.value.upper() == "TRUE"
    if token.subtype == Token.RANGE:
        return _block(token.value, sheet, values)
    raise _NotEvaluable  # an error literal


def _block(ref: str, sheet: str, values: dict[str, list[list[Any]]]) -> list[list[Any]]:
    if "!" in ref:
        sheet, ref = ref.rsplit("!", 1)
        if sheet.startswith("'") and sheet.endswith("'"):
            sheet = sheet[1:-1].replace("''", "'")
    try:
        c1, r1, c2, r2 = range_boundaries(ref)
    except ValueError:  # a defined name or a table reference
        raise _NotEvaluable from None
    if None in (c1, r1, c2, r2):  # whole rows or columns
        raise _NotEvaluable
    grid = values.get(sheet, [])
    block = []
    for r in range(r1, r2 + 1):
        row = grid[r - 1] if r - 1 < len(grid) else []
        block.append([row[c - 1] if c - 1 < len(row) else None for c in range(c1, c2 + 1)])
    return block


def computed_values(path: Path, sheets: list[str]) -> dict[str, list[list[Any]]]:
    from sop_xl import libreoffice

    if not libreoffice.available():
        raise PublishError("Publishing a saved workbook needs LibreOffice to compute its formulas "
                           "(Debian: apt-get install libreoffice-calc-nogui python3-uno), or publish from Excel")
    return libreoffice.inspect(path, sheets_for_values=sheets, timeout=300).values


def _drop_links_to(wb, sheet: str) -> None:
    """Hyperlinks (the Start sheet's contents) to a sheet the copy no longer has: clicking one would
    give Excel's 'Reference isn't valid'."""
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                link = cell.hyperlink
                if link is not None and _link_sheet(link) == sheet:
                    cell.hyperlink = None


def _link_sheet(link) -> str:
    """The sheet an in-workbook hyperlink points to ('Name'!A1, #Name!A1 or Name!A1), else ''."""
    where = str(link.location or link.target or "").lstrip("#")
    if "!" not in where:
        return ""
    sheet = where.rsplit("!", 1)[0]
    return sheet[1:-1].replace("''", "'") if sheet.startswith("'") and sheet.endswith("'") else sheet


def values_only_copy(source: Path, target: Path, values: dict[str, list[list[Any]]],
                     with_inputs: bool = False) -> tuple[int, int]:
    """Write ``target`` (.xlsx) from ``source`` with every formula replaced by its computed value,
    holding the review sheets (and, ``with_inputs``, the input and working sheets too)."""
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
    keep = [n for n in wb.sheetnames if n != k.XLWINGS_CONF_SHEET]  # no Python on the readers' side
    if not with_inputs:
        keep = [n for n in keep if n in REVIEW_SHEETS or is_family_page(n, wb[n]["A1"].value)]
    _keep_sheets(wb, keep)
    wb.save(target)
    return formulas, sop


def _keep_sheets(wb, keep: list[str]) -> None:
    """Drop every other sheet, with the defined names and the Start sheet's links that point to them."""
    dropped = [n for n in wb.sheetnames if n not in keep]
    for name in dropped:
        del wb[name]
    gone = {quote_sheet(n) for n in dropped} | set(dropped)
    for name in list(wb.defined_names):
        dests = list(wb.defined_names[name].destinations)
        if any(sheet in gone for sheet, _ref in dests) or "#REF!" in (wb.defined_names[name].attr_text or ""):
            del wb.defined_names[name]
    if k.START_SHEET in wb.sheetnames:
        _relist_sheets(wb[k.START_SHEET], dropped)
    for name in dropped:  # a link elsewhere to a dropped sheet would give 'Reference isn't valid'
        _drop_links_to(wb, name)


def quote_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _relist_sheets(ws, dropped: list[str]) -> None:
    """The Start sheet lists every sheet with a link: list only the sheets the copy holds, no gaps."""
    rows = [r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).hyperlink is not None]
    if not rows:
        return
    entries = [(ws.cell(r, 1).value, ws.cell(r, 1).hyperlink.location or ws.cell(r, 1).hyperlink.target,
                ws.cell(r, 2).value, ws.row_dimensions[r].height) for r in rows]
    kept = [e for e in entries if e[0] not in dropped]
    for r in rows:
        ws.cell(r, 1).hyperlink = None
        ws.cell(r, 1).value = ws.cell(r, 2).value = None
        ws.row_dimensions[r].height = None
    style_a, style_b = ws.cell(rows[0], 1)._style, ws.cell(rows[0], 2)._style
    for i, (name, link, note, height) in enumerate(kept):
        r = rows[0] + i
        a = ws.cell(r, 1, name)
        a.hyperlink = f"#{link.lstrip('#')}" if link else None
        a._style = style_a
        ws.cell(r, 2, note)._style = style_b
        ws.row_dimensions[r].height = height


def publish(book, out_dir: str | Path | None = None, progress=None, with_inputs: bool = False) -> Published:
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
            atomic_save(xlsx, lambda tmp: counts.extend(values_only_copy(snapshot, tmp, values, with_inputs)),
                        backup=False)
        made_pdf = None
        if libreoffice.available():
            book.status("Publishing: PDF of the review pages …")
            libreoffice.convert(xlsx, pdf, sheets=pdf_sheets(values), timeout=300)
            made_pdf = pdf
        result = Published(xlsx, made_pdf, counts[0], counts[1], rec.elapsed())
        rec.message = str(result)
    return result


def pdf_sheets(values: dict[str, list[list[Any]]]) -> list[str]:
    """The review pages to print: a table sheet only when its table holds rows (scenarios not run yet,
    no snapshot taken: no empty page)."""
    out = []
    family = [name for name, grid in values.items() if is_family_page(name, grid[0][0] if grid and grid[0] else None)]
    for sheet in PDF_SHEETS[:1] + tuple(family) + PDF_SHEETS[1:]:
        table = k.table_by_sheet(sheet)
        grid = values.get(sheet, [])
        if table is not None:
            first = table.header_row  # 0-based index of the first body row
            body = grid[first] if len(grid) > first else []
            if not any(v not in (None, "") for v in body):
                continue
        out.append(sheet)
    return out


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


__all__ = ["publish", "values_only_copy", "evaluate_sop_formula", "pdf_sheets", "Published", "PublishError"]
