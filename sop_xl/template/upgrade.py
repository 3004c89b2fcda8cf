"""`sop-xl upgrade WORKBOOK`: bring a workbook made by an older sop-xl to the current layout.

What a release may have changed, and what upgrade does about it:
- a sheet or table renamed (History/tblHistory became Actuals/tblActuals: Excel reserves the sheet name
  History): renamed, and every formula, defined name, validation, conditional format and chart reference
  that pointed at the old names is rewritten;
- a column added to a table: added at the table's right end, formatted as in the template (blank for
  inputs: the column's default applies; outputs fill on the next run);
- a sheet or a setting added: created as in the template (a setting with its default);
- the Start and Dashboard sheets, the VBA project and the ribbon: replaced by the current template's
  when the workbook's format is older (they hold no data of yours; the old file is kept as the backup).

Never touched: the rows of any table, the order of your columns, sheets of your own, your xlwings.conf
keys. The workbook is saved once, atomically, with a backup (``<name>.backup.xlsm``); a refused upgrade
(e.g. a column cannot be added because the cells beside the table are used) leaves the file
byte-identical and names the cells. Upgrading a current workbook changes nothing.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from copy import copy
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl.formula.tokenizer import Tokenizer
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.table import TableColumn

from sop_xl import contract as k
from sop_xl.plan.freshness import DEPENDS, stamp_name
from sop_xl.plan.validation import Problem, ValidationError
from sop_xl.excel.setup import drop_empty_keys, repair_vba
from sop_xl.template.builder import add_sheet, layout_workbook
from sop_xl.template.layout import STAMP_CELL, add_setting_row, add_stamp_cell, add_start_sheet
from sop_xl.workbook import ribbon, vba
from sop_xl.workbook.file_book import FileBook
from sop_xl.workbook.safe_io import atomic_save
from sop_xl.workbook.save import save_workbook


@dataclass
class Upgrade:
    """What upgrade did (or, in a dry run, would do) to one workbook."""
    format_before: int
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what it left alone, and why

    @property
    def needed(self) -> bool:
        return bool(self.changes)


def workbook_format(wb) -> int:
    """The layout version a workbook declares (1: made before the name existed)."""
    name = wb.defined_names.get(k.FORMAT_NAME)
    try:
        return int(str(name.attr_text).lstrip("="))
    except (AttributeError, TypeError, ValueError):
        return 1


def upgrade_workbook(path, *, dry_run: bool = False) -> Upgrade:
    """Migrate the workbook at ``path`` in place (atomic save, backup kept); a dry run only reports."""
    with FileBook(path, writable=not dry_run) as book:
        result = migrate(book.wb)
        if dry_run or not result.needed:
            return result
        custom_ui = book._custom_ui
        replace_code = result.format_before < k.WORKBOOK_FORMAT

        def write(tmp: Path) -> None:
            nonlocal custom_ui
            # Built under the workbook's own name in a private folder (the VBA writer checks the
            # extension), then copied into the temporary file the atomic save swaps in.
            with tempfile.TemporaryDirectory(prefix="sop-xl-upgrade-") as folder:
                work = Path(folder) / book.path.name
                save_workbook(book.wb, work, None, backup=False)
                if replace_code and book.path.suffix.lower() == ".xlsm":
                    try:
                        result.changes.append(repair_vba(work))
                        custom_ui = ribbon.template_custom_ui()
                        result.changes.append("ribbon: the current S&OP tab")
                    except RuntimeError as exc:  # VBA of the user's own: keep their code and their ribbon
                        result.notes.append(f"VBA and ribbon kept as they were: {exc}")
                if custom_ui:
                    ribbon.add_custom_ui(work, custom_ui)
                shutil.copyfile(work, tmp)

        atomic_save(book.path, write, backup=True)
    return result


def migrate(wb) -> Upgrade:
    """Change the openpyxl workbook ``wb`` to the current layout; refuse (ValidationError, nothing
    changed worth saving) when a change would overwrite something of the user's."""
    result = Upgrade(workbook_format(wb))
    reference = layout_workbook()  # the current template's sheets: styles and widths to copy
    _renames(wb, result)
    blocked = _check_room(wb)
    if blocked:
        raise ValidationError(blocked)
    old = result.format_before < k.WORKBOOK_FORMAT
    for sheet in k.SHEET_ORDER:
        if sheet in (k.START_SHEET, k.DASHBOARD_SHEET):
            if sheet not in wb.sheetnames or old:
                _replace_sheet(wb, sheet, result)
        elif sheet == k.SETTINGS_SHEET:
            _settings(wb, result)
        elif sheet == k.XLWINGS_CONF_SHEET:
            if sheet not in wb.sheetnames:
                add_sheet(wb, sheet)
                _place(wb, sheet)
                result.changes.append(f"sheet {sheet} added")
            else:
                dropped = drop_empty_keys(wb[sheet])
                if dropped:
                    result.changes.append(f"{sheet}: empty key(s) {', '.join(dropped)} removed (an empty "
                                          "key hides the value set in your own xlwings.conf file)")
        else:
            _table(wb, k.table_by_sheet(sheet), reference, result)
    vba.give_code_names(wb)
    if old:
        wb.defined_names[k.FORMAT_NAME] = DefinedName(k.FORMAT_NAME, attr_text=str(k.WORKBOOK_FORMAT))
        result.changes.append(f"layout format {result.format_before} → {k.WORKBOOK_FORMAT}")
    return result


# ----------------------------------------------------------------------------- renames
def _renames(wb, result: Upgrade) -> None:
    sheets, tables = {}, {}
    for old_sheet, old_table, table in k.RENAMED:
        present = {s.lower(): s for s in wb.sheetnames}
        if old_sheet.lower() not in present:
            continue
        if table.sheet.lower() in present:
            result.notes.append(f"sheet {present[old_sheet.lower()]} left alone: sheet {table.sheet} exists too")
            continue
        ws = wb[present[old_sheet.lower()]]
        ws.title = table.sheet
        sheets[old_sheet] = table.sheet
        for name in list(ws.tables):
            if name.lower() == old_table.lower():
                xl = ws.tables.pop(name)
                xl.name = xl.displayName = table.name
                ws.tables.add(xl)
                tables[old_table] = table.name
        result.changes.append(f"sheet {old_sheet} renamed {table.sheet}"
                              + (f", table {old_table} renamed {table.name}" if old_table in tables else ""))
    if sheets or tables:
        n = rewrite_references(wb, sheets, tables)
        if n:
            result.changes.append(f"{n} formula(s) and name(s) now refer to the new names")


def _operand_renamer(sheets: dict[str, str], tables: dict[str, str]):
    """A function renaming one range operand: ``History!C5``, ``'History'!C5`` and ``tblHistory[Qty]``
    (case-insensitive, as Excel compares names); anything else comes back unchanged."""
    sheet_re = re.compile(r"^(?:'(?P<q>(?:[^']|'')+)'|(?P<u>[^'!\[\]]+))!(?P<rest>.*)$", re.S)
    table_re = re.compile(r"^(?P<name>[A-Za-z_\\][\w.]*)(?P<rest>\[.*)?$", re.S)
    lower_sheets = {a.lower(): b for a, b in sheets.items()}
    lower_tables = {a.lower(): b for a, b in tables.items()}

    def rename(value: str) -> str:
        m = sheet_re.match(value)
        if m:
            name = (m["q"] or "").replace("''", "'") or m["u"]
            new = lower_sheets.get(name.lower())
            if new:
                quoted = new if re.fullmatch(r"[A-Za-z_]\w*", new) else "'" + new.replace("'", "''") + "'"
                return f"{quoted}!{m['rest']}"
            return value
        m = table_re.match(value)
        if m and m["name"].lower() in lower_tables:
            return lower_tables[m["name"].lower()] + (m["rest"] or "")
        return value

    return rename


def rename_in_formula(formula: str, rename) -> str:
    """``formula`` ('=…') with its range operands renamed; the text itself when nothing changes (so a
    formula upgrade does not touch keeps its exact spacing)."""
    try:
        tokens = Tokenizer(formula).items
    except Exception:  # noqa: BLE001 - a formula the tokenizer cannot read is left as the user wrote it
        return formula
    changed = False
    for t in tokens:
        if t.type == "OPERAND" and t.subtype == "RANGE":
            new = rename(t.value)
            if new != t.value:
                t.value, changed = new, True
    return "=" + "".join(t.value for t in tokens) if changed else formula


def rewrite_references(wb, sheets: dict[str, str], tables: dict[str, str]) -> int:
    """Rewrite every reference to a renamed sheet or table; returns how many texts changed."""
    rename = _operand_renamer(sheets, tables)
    n = 0

    def fix(text, bare: bool = False):
        nonlocal n
        if not isinstance(text, str) or not text:
            return text
        source = text if text.startswith("=") else "=" + text
        new = rename_in_formula(source, rename)
        if new == source:
            return text
        n += 1
        return new[1:] if (bare or not text.startswith("=")) else new

    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                v = cell.value
                if isinstance(v, str) and v.startswith("="):
                    cell.value = fix(v)
                elif hasattr(v, "text") and isinstance(getattr(v, "text", None), str):  # array formula
                    v.text = fix(v.text)
        for dv in ws.data_validations.dataValidation:
            dv.formula1, dv.formula2 = fix(dv.formula1, True), fix(dv.formula2, True)
        for rules in ws.conditional_formatting._cf_rules.values():
            for rule in rules:
                rule.formula = [fix(f, True) for f in (rule.formula or [])]
        for chart in getattr(ws, "_charts", []):
            for series in chart.series:
                for ref in (series.val, series.cat, series.xVal, series.yVal, series.tx):
                    for part in ("numRef", "strRef"):
                        r = getattr(ref, part, None) if ref is not None else None
                        if r is not None and r.f:
                            r.f = fix(r.f, True)
    for name, defined in list(wb.defined_names.items()):
        defined.attr_text = fix(defined.attr_text, True)
    for ws in wb.worksheets:
        for name, defined in list(ws.defined_names.items()):
            defined.attr_text = fix(defined.attr_text, True)
    return n


# ----------------------------------------------------------------------------- tables and columns
def _xl_table(ws, table: k.Table):
    return next((ws.tables[n] for n in ws.tables if n.lower() == table.name.lower()), None)


def _missing_columns(ws, xl, table: k.Table) -> list[k.Column]:
    min_col, min_row, max_col, _ = range_boundaries(xl.ref)
    headers = {str(ws.cell(min_row, c).value or "").strip().lower() for c in range(min_col, max_col + 1)}
    return [c for c in table.columns if c.header.lower() not in headers]


def _check_room(wb) -> list[Problem]:
    """Cells a new column would overwrite: the whole upgrade is refused, naming them."""
    problems = []
    for table in k.TABLES.values():
        if table.sheet not in wb.sheetnames or table.sheet == k.DASHBOARD_SHEET:  # the Dashboard is replaced
            continue
        if table.role == k.OUTPUT and table not in ACCUMULATING:  # replaced whole when its columns differ
            continue
        ws = wb[table.sheet]
        xl = _xl_table(ws, table)
        if xl is None:
            continue
        missing = _missing_columns(ws, xl, table)
        min_col, min_row, max_col, max_row = range_boundaries(xl.ref)
        max_row = max(min(max_row, ws.max_row), min_row + 1)
        for i, col in enumerate(missing):
            c = max_col + 1 + i
            used = [ws.cell(r, c).coordinate for r in range(min_row - 1, max_row + 1)
                    if ws.cell(r, c).value not in (None, "")]
            if used:
                problems.append(Problem(table.sheet, table.name, None, col.header,
                                        f"the new column {col.header} goes in column {get_column_letter(c)}, "
                                        f"but {', '.join(used[:3])}{' …' if len(used) > 3 else ''} hold(s) data",
                                        "Move those cells elsewhere and run sop-xl upgrade again"))
    return problems


def _table(wb, table: k.Table | None, reference, result: Upgrade) -> None:
    if table is None:
        return
    if table.sheet not in wb.sheetnames:
        add_sheet(wb, table.sheet)
        _place(wb, table.sheet)
        result.changes.append(f"sheet {table.sheet} added (table {table.name})")
        return
    ws = wb[table.sheet]
    xl = _xl_table(ws, table)
    if xl is None:
        result.notes.append(f"sheet {table.sheet} has no table {table.name}: restore it from the template "
                            "(sop-xl validate names it)")
        return
    missing = _missing_columns(ws, xl, table)
    if missing and table.role == k.OUTPUT and table not in ACCUMULATING:
        _fresh_sheet(wb, table.sheet)
        result.changes.append(f"{table.sheet}: the current layout (columns {', '.join(c.header for c in missing)}); "
                              "it fills on the next run")
        return
    if missing:
        _add_columns(ws, xl, table, missing, reference[table.sheet])
        result.changes.append(f"{table.sheet}: column(s) {', '.join(c.header for c in missing)} added")
    if table.name in DEPENDS and stamp_name(table) not in wb.defined_names and ws[STAMP_CELL].value is None:
        add_stamp_cell(wb, ws, table)
        result.changes.append(f"{table.sheet}: stamp cell added")


# Output tables whose rows are history, not a run's result: their rows are kept, new columns added.
# Every other output table is rewritten whole by the run that computes it, so an old-layout one is
# replaced by the template's (an old column left beside the new ones would show stale numbers).
ACCUMULATING = (k.SNAPSHOTS, k.LOG)


def _add_columns(ws, xl, table: k.Table, missing: list[k.Column], ref_ws) -> None:
    """Append ``missing`` columns at the right end of the Excel table, styled like the template's."""
    min_col, min_row, max_col, max_row = range_boundaries(xl.ref)
    ref_xl = _xl_table(ref_ws, table)
    r_min_col, r_min_row, _, _ = range_boundaries(ref_xl.ref)
    ref_heads = [ref_ws.cell(r_min_row, c).value for c in range(r_min_col, r_min_col + len(table.columns))]
    next_id = max((tc.id for tc in xl.tableColumns), default=0) + 1
    for i, col in enumerate(missing):
        c = max_col + 1 + i
        rc = r_min_col + ref_heads.index(col.header)
        for dr in (-1, 0):  # unit label above the header, then the header
            src, dst = ref_ws.cell(r_min_row + dr, rc), ws.cell(min_row + dr, c)
            dst.value = src.value
            _style(src, dst)
        body = ref_ws.cell(r_min_row + 1, rc)
        for r in range(min_row + 1, max_row + 1):
            _style(body, ws.cell(r, c))
        letter = get_column_letter(c)
        ws.column_dimensions[letter].width = ref_ws.column_dimensions[get_column_letter(rc)].width
        xl.tableColumns.append(TableColumn(id=next_id + i, name=col.header))
    xl.ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col + len(missing))}{max_row}"
    if xl.autoFilter is not None:
        xl.autoFilter.ref = xl.ref


def _style(src, dst) -> None:
    if src.has_style:
        dst.font, dst.fill, dst.border = copy(src.font), copy(src.fill), copy(src.border)
        dst.alignment, dst.protection = copy(src.alignment), copy(src.protection)
        dst.number_format = src.number_format


# ----------------------------------------------------------------------------- sheets and settings
def _place(wb, sheet: str) -> None:
    """Move a new sheet to its place in the template's order: after the nearest earlier sheet present."""
    order = list(k.SHEET_ORDER)
    ws = wb[sheet]
    before = [s for s in order[:order.index(sheet)] if s in wb.sheetnames and s != sheet]
    target = wb.sheetnames.index(before[-1]) + 1 if before else 0
    wb.move_sheet(ws, offset=target - wb.sheetnames.index(sheet))


def _replace_sheet(wb, sheet: str, result: Upgrade) -> None:
    existed = _fresh_sheet(wb, sheet)
    result.changes.append(f"sheet {sheet} {'replaced by' if existed else 'added from'} the current template's")


def _fresh_sheet(wb, sheet: str) -> bool:
    """The template's ``sheet`` in place of the workbook's (same position), or added at its place in the
    template's order; True when one was replaced."""
    existed = sheet in wb.sheetnames
    index = wb.sheetnames.index(sheet) if existed else None
    if existed:
        wb.remove(wb[sheet])
    if sheet == k.START_SHEET:
        add_start_sheet(wb, wb.create_sheet(k.START_SHEET))
    else:
        add_sheet(wb, sheet)
    if index is None:
        _place(wb, sheet)
    else:
        wb.move_sheet(wb[sheet], offset=index - wb.sheetnames.index(sheet))
    return existed


def _settings(wb, result: Upgrade) -> None:
    if k.SETTINGS_SHEET not in wb.sheetnames:
        from sop_xl.template.layout import add_settings_sheet
        add_settings_sheet(wb)
        _place(wb, k.SETTINGS_SHEET)
        result.changes.append(f"sheet {k.SETTINGS_SHEET} added with every setting at its default")
        return
    ws = wb[k.SETTINGS_SHEET]
    added = []
    row = _last_used_row(ws)
    for s in k.SETTINGS:
        if s.name in wb.defined_names:
            continue
        row += 1
        add_setting_row(wb, ws, row, s)
        added.append(s.name)
    if added:
        result.changes.append(f"Settings: {', '.join(added)} added (defaults)")


def _last_used_row(ws) -> int:
    for r in range(ws.max_row, 0, -1):
        if any(ws.cell(r, c).value not in (None, "") for c in range(1, 6)):
            return r
    return 4
