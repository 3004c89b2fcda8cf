"""Test workbooks: the template layout filled with (a small cut of) the demo company.

``demo_xlsx(tmp_path, mutate=...)`` gives a fresh .xlsx file on disk; ``mutate(wb)`` may change the
openpyxl workbook before it is saved. The filled base workbook is built once per process and
copied, so a test pays only for its own load / mutate / save.

The layout comes from ``sop_xl.template.builder.layout_workbook()`` (no VBA, no ribbon): the
committed .xlsm template is not needed.
"""
from __future__ import annotations

import functools
import hashlib
import io
import re
import zipfile
from copy import copy
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries

from sop_xl import contract as k

TMP_PATTERN = re.compile(r"^\..+\.tmp$")  # safe_io.atomic_save's temp files: .<stem>.XXXX<suffix>.tmp


# ------------------------------------------------------------------------------------------ demo data
@functools.lru_cache(maxsize=None)
def _small_demo_cached() -> tuple[dict[str, pd.DataFrame], dict]:
    """The demo company cut down to 2 finished goods per family and what their BOMs use."""
    from sop_xl.demo.company import make_demo

    frames, settings = make_demo(7, items_per_family=2, horizon=6)
    items = frames["tblItems"]
    bom = frames["tblBOM"]
    keep = set(items.loc[items["item_type"] == "FG", "item"])
    frontier = set(keep)
    while frontier:
        children = set(bom.loc[bom["parent"].isin(frontier), "component"]) - keep
        keep |= children
        frontier = children
    out = {}
    for name, frame in frames.items():
        if "item" in frame.columns:
            frame = frame[frame["item"].isin(keep)]
        if name == "tblBOM":
            frame = frame[frame["parent"].isin(keep)]
        if name == "tblActuals":
            frame = frame[frame["period"] >= settings["PlanStart"] - pd.DateOffset(months=24)]
        out[name] = frame.reset_index(drop=True)
    return out, settings


def small_demo() -> tuple[dict[str, pd.DataFrame], dict]:
    frames, settings = _small_demo_cached()
    return {n: f.copy() for n, f in frames.items()}, dict(settings)


@functools.lru_cache(maxsize=None)
def _base_bytes() -> bytes:
    import tempfile

    from sop_xl.workbook.file_book import FileBook
    from sop_xl.demo.workbook import fill_workbook
    from sop_xl.template.builder import layout_workbook

    frames, settings = small_demo()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.xlsx"
        layout_workbook().save(path)
        with FileBook(path) as book:
            fill_workbook(book, frames, settings)
            book.save()
        return path.read_bytes()


def demo_xlsx(tmp_path: Path, mutate: Callable[[Any], None] | None = None, name: str = "demo.xlsx") -> Path:
    """A filled demo workbook at ``tmp_path / name``; ``mutate(wb)`` edits it (openpyxl) before saving."""
    path = Path(tmp_path) / name
    data = _base_bytes()
    if mutate is None:
        path.write_bytes(data)
        return path
    wb = load_workbook(io.BytesIO(data))
    mutate(wb)
    wb.save(path)
    return path


# ------------------------------------------------------------------------------------------ mutations
def table_ref(wb, table: k.Table) -> tuple[int, int, int, int]:
    return range_boundaries(wb[table.sheet].tables[table.name].ref)  # min_col, min_row, max_col, max_row


def n_rows(wb, table: k.Table) -> int:
    _, min_row, _, max_row = table_ref(wb, table)
    return max_row - min_row


def excel_row(wb, table: k.Table, i: int) -> int:
    """The Excel row of body row ``i`` (0-based; negative counts from the end)."""
    _, min_row, _, max_row = table_ref(wb, table)
    return min_row + 1 + i if i >= 0 else max_row + 1 + i


def col_index(wb, table: k.Table, field: str) -> int:
    ws = wb[table.sheet]
    min_col, min_row, max_col, _ = table_ref(wb, table)
    header = table.column(field).header
    for c in range(min_col, max_col + 1):
        if ws.cell(min_row, c).value == header:
            return c
    raise KeyError(header)


def cell(wb, table: k.Table, i: int, field: str):
    return wb[table.sheet].cell(excel_row(wb, table, i), col_index(wb, table, field))


def set_value(wb, table: k.Table, i: int, field: str, value) -> int:
    """Put ``value`` in body row ``i``; returns the Excel row."""
    c = cell(wb, table, i, field)
    c.value = value
    return c.row


def get_value(wb, table: k.Table, i: int, field: str):
    return cell(wb, table, i, field).value


def append_row(wb, table: k.Table, values: dict[str, Any]) -> int:
    """Add a body row after the last one (extending the table); returns its Excel row."""
    ws = wb[table.sheet]
    min_col, min_row, max_col, max_row = table_ref(wb, table)
    row = max_row + 1
    if max_row == min_row + 1 and all(ws.cell(max_row, c).value is None for c in range(min_col, max_col + 1)):
        row = max_row  # an empty table keeps one blank body row: fill that
    for fld, value in values.items():
        ws.cell(row, col_index(wb, table, fld)).value = value
    _set_ref(ws, table, min_col, min_row, max_col, row)
    return row


def copy_row(wb, table: k.Table, i: int, changes: dict[str, Any] | None = None) -> int:
    """Append a copy of body row ``i`` with ``changes``; returns the Excel row of the copy."""
    values = {c.field: get_value(wb, table, i, c.field) for c in table.columns}
    values.update(changes or {})
    return append_row(wb, table, values)


def find_row(wb, table: k.Table, **match) -> int:
    """Index (0-based) of the first body row whose fields equal ``match``."""
    for i in range(n_rows(wb, table)):
        if all(get_value(wb, table, i, f) == v for f, v in match.items()):
            return i
    raise LookupError(f"{table.name}: no row with {match}")


def drop_last_column(wb, table: k.Table) -> str:
    """Remove the table's last column (header, body, ListObject column); returns its header."""
    ws = wb[table.sheet]
    min_col, min_row, max_col, max_row = table_ref(wb, table)
    header = ws.cell(min_row, max_col).value
    for r in range(min_row, max_row + 1):
        ws.cell(r, max_col).value = None
    lo = ws.tables[table.name]
    lo.tableColumns = lo.tableColumns[:-1]
    _set_ref(ws, table, min_col, min_row, max_col - 1, max_row)
    return header


def rename_header(wb, table: k.Table, field: str, new: str) -> int:
    """Rename a column header (cell and ListObject column); returns the header's Excel row."""
    ws = wb[table.sheet]
    c = col_index(wb, table, field)
    min_col, min_row, _, _ = table_ref(wb, table)
    ws.cell(min_row, c).value = new
    lo = ws.tables[table.name]
    if lo.tableColumns:
        lo.tableColumns[c - min_col].name = new
    return min_row


def swap_columns(wb, table: k.Table, field_a: str, field_b: str) -> None:
    """Swap two whole columns of a table (headers, body, ListObject column names), as a user who drags
    one column before another does."""
    ws = wb[table.sheet]
    a, b = col_index(wb, table, field_a), col_index(wb, table, field_b)
    min_col, min_row, _, max_row = table_ref(wb, table)
    for r in range(min_row, max_row + 1):
        ca, cb = ws.cell(r, a), ws.cell(r, b)
        ca.value, cb.value = cb.value, ca.value
        ca._style, cb._style = copy(cb._style), copy(ca._style)
    lo = ws.tables[table.name]
    if lo.tableColumns:
        cols = lo.tableColumns
        cols[a - min_col].name, cols[b - min_col].name = cols[b - min_col].name, cols[a - min_col].name


def add_column(wb, table: k.Table, header: str, values: Callable[[int], Any]) -> int:
    """A user's own column after the table's last one: ``values(i)`` for body row ``i``. Returns the
    sheet column number."""
    from openpyxl.worksheet.table import TableColumn

    ws = wb[table.sheet]
    min_col, min_row, max_col, max_row = table_ref(wb, table)
    c = max_col + 1
    ws.cell(min_row, c).value = header
    for i, r in enumerate(range(min_row + 1, max_row + 1)):
        ws.cell(r, c).value = values(i)
    lo = ws.tables[table.name]
    if lo.tableColumns:
        lo.tableColumns.append(TableColumn(id=max(tc.id for tc in lo.tableColumns) + 1, name=header))
    _set_ref(ws, table, min_col, min_row, c, max_row)
    return c


def _set_ref(ws, table: k.Table, min_col, min_row, max_col, max_row) -> None:
    ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{max_row}"
    lo = ws.tables[table.name]
    lo.ref = ref
    if lo.autoFilter is not None:
        lo.autoFilter.ref = ref


def set_setting(wb, name: str, value) -> str:
    """Write a named settings cell; returns its coordinate ('B6')."""
    defined = wb.defined_names[name]
    sheet, coord = next(iter(defined.destinations))
    wb[sheet][coord.replace("$", "")].value = value
    return coord.replace("$", "")


@functools.lru_cache(maxsize=None)
def _defined_names() -> dict[str, tuple[str, str]]:
    with zipfile.ZipFile(io.BytesIO(_base_bytes())) as zf:
        xml = zf.read("xl/workbook.xml").decode()
    names = {}
    for name, target in re.findall(r'<definedName name="([^"]+)"[^>]*>([^<]+)</definedName>', xml):
        if "!" not in target:  # a constant (the layout format), not a cell
            continue
        sheet, ref = target.rsplit("!", 1)
        names[name] = (sheet.strip("'").replace("''", "'"), ref.replace("$", ""))
    return names


def setting_cell(name: str) -> tuple[str, str]:
    """Sheet and cell ('Settings', 'B6') of a named settings cell in the demo workbook."""
    return _defined_names()[name]


def plan_start(wb) -> datetime:
    defined = wb.defined_names["PlanStart"]
    sheet, coord = next(iter(defined.destinations))
    return wb[sheet][coord.replace("$", "")].value


# ------------------------------------------------------------------------------------------ packages
def sheet_part(path: Path, sheet: str) -> str:
    """The zip member name of a worksheet ('xl/worksheets/sheet7.xml')."""
    with zipfile.ZipFile(path) as zf:
        wb_xml = zf.read("xl/workbook.xml").decode()
        rels = zf.read("xl/_rels/workbook.xml.rels").decode()
    m = re.search(r'<sheet [^>]*name="' + re.escape(sheet) + r'"[^>]*r:id="([^"]+)"', wb_xml)
    if m is None:
        m = re.search(r'<sheet [^>]*r:id="([^"]+)"[^>]*name="' + re.escape(sheet) + '"', wb_xml)
    rid = m.group(1)
    target = re.search(r'<Relationship [^>]*Id="' + rid + r'"[^>]*Target="([^"]+)"', rels)
    if target is None:
        target = re.search(r'<Relationship [^>]*Target="([^"]+)"[^>]*Id="' + rid + '"', rels)
    t = target.group(1)
    return t.lstrip("/") if t.startswith("/") else "xl/" + t


def rewrite_members(path: Path, edit: Callable[[str, bytes], bytes | None]) -> None:
    """Rewrite the zip package: ``edit(name, data)`` returns new bytes, or None to keep the member."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info.filename)) for info in zf.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in members:
            new = edit(info.filename, data)
            out.writestr(info.filename, data if new is None else new)
    path.write_bytes(buf.getvalue())


def patch_sheet_xml(path: Path, sheet: str, fn: Callable[[str], str]) -> None:
    part = sheet_part(path, sheet)
    rewrite_members(path, lambda name, data: fn(data.decode("utf-8")).encode("utf-8") if name == part else None)


def coordinate(table: k.Table, i: int, field: str) -> tuple[int, str]:
    """Excel row and cell ('C7') of body row ``i`` (negative: from the end) of a table in the demo
    workbook as ``demo_xlsx`` writes it (contract column order, body from header_row + 1)."""
    frames, _ = _small_demo_cached()
    n = len(frames[table.name]) if table.name in frames else 0
    if i < 0:
        i += n
    row = table.header_row + 1 + i
    return row, f"{get_column_letter(table.first_col + table.fields.index(field))}{row}"


def _cell_xml(ref: str, attrs: str, value) -> str:
    from xml.sax.saxutils import escape

    from sop_xl.plan.cells import excel_serial

    style = re.search(r'\bs="\d+"', attrs)
    head = f'<c r="{ref}"' + (f" {style.group(0)}" if style else "")
    if value is None:
        return head + "/>"
    if isinstance(value, Xml):
        return head + value.attrs + ">" + value.inner + "</c>"
    if isinstance(value, bool):
        return head + f' t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float)):
        return head + f' t="n"><v>{value!r}</v></c>'
    if isinstance(value, datetime):
        return head + f' t="n"><v>{excel_serial(value)!r}</v></c>'
    text = str(value)
    if text.startswith("="):
        return head + f"><f>{escape(text[1:])}</f><v/></c>"
    return head + f' t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


class Xml:
    """Raw cell XML for ``set_cells``: ``Xml(' t="e"', '<f>1/0</f><v>#DIV/0!</v>')``."""

    def __init__(self, attrs: str, inner: str):
        self.attrs, self.inner = attrs, inner


def _col_number(ref: str) -> int:
    n = 0
    for ch in re.match(r"[A-Z]+", ref).group(0):
        n = n * 26 + ord(ch) - 64
    return n


def set_cells(path: Path, sheet: str, values: dict[str, Any]) -> None:
    """Write cell values straight into the sheet XML (fast: no openpyxl load/save). Values: None,
    bool, int/float (written verbatim, so 10**400 stays a 400-digit number), datetime, str ('=...'
    is a formula without a computed value), or ``Xml`` for anything else."""

    def patch(xml: str) -> str:
        for ref, value in values.items():
            cell_re = re.compile(r'<c r="' + ref + r'"(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</c>)', re.S)
            m = cell_re.search(xml)
            if m is not None:
                xml = xml[:m.start()] + _cell_xml(ref, m.group("attrs"), value) + xml[m.end():]
                continue
            row = int(re.search(r"\d+", ref).group(0))
            rm = re.search(r'<row r="' + str(row) + r'"[^>]*?(?:/>|>(?P<body>.*?)</row>)', xml, re.S)
            if rm is None:
                raise KeyError(f"{sheet}!{ref}: row {row} is not in the sheet XML")
            body = rm.group("body") or ""
            new = _cell_xml(ref, "", value)
            pos = len(body)
            for cm in re.finditer(r'<c r="([A-Z]+)\d+"', body):
                if _col_number(cm.group(1)) > _col_number(ref):
                    pos = cm.start()
                    break
            body = body[:pos] + new + body[pos:]
            opening = re.match(r"<row [^>]*?(?=/?>)", rm.group(0)).group(0)
            xml = xml[:rm.start()] + opening + ">" + body + "</row>" + xml[rm.end():]
        return xml

    patch_sheet_xml(path, sheet, patch)


# ------------------------------------------------------------------------------------------ checks
def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def folder_listing(folder: Path) -> set[str]:
    return {p.name for p in Path(folder).iterdir()}


def strays(folder: Path, workbook: Path) -> set[str]:
    """Backup, lock and temp files that belong to ``workbook`` in ``folder``."""
    from sop_xl.workbook.locking import lock_path
    from sop_xl.workbook.safe_io import backup_path

    workbook = Path(workbook)
    found = set()
    for p in Path(folder).iterdir():
        if p.name in (backup_path(workbook).name, lock_path(workbook).name):
            found.add(p.name)
        elif p.name.startswith(f".{workbook.stem}.") and p.name.endswith(".tmp"):
            found.add(p.name)
    return found
