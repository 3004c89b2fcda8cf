"""Sheet layout of the S&OP workbook, generated from the contract with openpyxl.

Inputs look different from outputs: input tables are blue with data validation, add-in-written
columns are grey, output sheets are protected without a password (people read them; the add-in
writes them). Header rows are frozen, and every sheet prints landscape, one page wide.
"""
from __future__ import annotations

import math

from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.workbook import Workbook
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.table import Table as XlTable
from openpyxl.worksheet.table import TableStyleInfo

from sop_xl import contract as k
from sop_xl.plan.freshness import DEPENDS, FAMILY_PAGES, stamp_name
from openpyxl.utils import get_column_letter as column_letter

# Named, not left to the application's default: LibreOffice's default for an unnamed font is a wide
# serif, which turns month headers into ####; Calibri (Carlito in LibreOffice) is what widths assume.
FONT = "Calibri"
TITLE = Font(name=FONT, size=16, bold=True, color="1F3864")
SUBTITLE = Font(name=FONT, italic=True, color="595959")
UNIT = Font(name=FONT, size=8, italic=True, color="808080")
BOLD = Font(name=FONT, bold=True)
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")     # pale yellow: type here
COMPUTED_FILL = PatternFill("solid", fgColor="EDEDED")  # grey: the add-in or a formula fills this
TAB_INPUT, TAB_OUTPUT, TAB_REVIEW, TAB_SETUP = "2F75B5", "548235", "C55A11", "7F7F7F"
MAX_ROW = 1048576
# Orange tabs, as the README's legend says: what the review meeting reads.
REVIEW_TAB_SHEETS = {t.sheet for t in (k.EXCEPTIONS, k.SCENARIO_RESULTS, k.SCENARIO_DIFFS, k.PLAN_CHANGES, k.SNAPSHOTS,
                                       k.LOG)}


def title_block(ws, title: str, description: str) -> None:
    ws["A1"] = title
    ws["A1"].font = TITLE
    ws["A2"] = description
    ws["A2"].font = SUBTITLE
    ws.row_dimensions[1].height = 24


# The page geometry is shared with the pages generated at run time (sop_xl/plan/page.py).
from sop_xl.plan.page import MIN_SCALE, PRINT_HEIGHT_PX, PRINT_WIDTH_PX, column_px, scale_for  # noqa: E402,F401


def sheet_width_px(ws) -> int:
    default = 8.43
    return sum(column_px(ws.column_dimensions[column_letter(c)].width or default)
               for c in range(1, ws.max_column + 1))


def print_scale(ws) -> int:
    """The print scale that fits the sheet's columns across the page (see plan/page.py scale_for)."""
    return scale_for(sheet_width_px(ws))


def print_setup(ws, title_rows: str | None = None) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.5, header=0.25, footer=0.25)
    ws.sheet_properties.pageSetUpPr.fitToPage = False
    ws.page_setup.fitToWidth = None
    ws.page_setup.fitToHeight = None
    ws.page_setup.scale = print_scale(ws)
    ws.print_options.gridLines = False
    ws.oddFooter.center.text = "&A — page &P of &N"
    if title_rows:
        ws.print_title_rows = title_rows


def add_table_sheet(wb: Workbook, table: k.Table) -> None:
    ws = wb.create_sheet(table.sheet)
    title_block(ws, table.title, table.description)
    hr, c0 = table.header_row, table.first_col
    for j, col in enumerate(table.columns):
        letter = column_letter(c0 + j)
        head = ws.cell(hr, c0 + j, col.header)
        head.font = BOLD
        if col.unit or col.kind == k.PERCENT:
            ws.cell(hr - 1, c0 + j, unit_label(col.unit or "%")).font = UNIT
        ws.column_dimensions[letter].width = max(col.width, len(col.header) + 3)
        body = ws.cell(hr + 1, c0 + j)
        body.number_format = col.number_format
        writable_by_people = table.role != k.OUTPUT and col.editable and col.formula is None
        if table.role == k.MIXED:
            body.fill = INPUT_FILL if writable_by_people else COMPUTED_FILL
        if col.kind == k.TEXT and col.width >= 40:  # a message after a number column: keep them apart
            body.alignment = Alignment(indent=1)
        if col.kept:  # the planner's column on a protected output sheet: typed, kept across runs
            body.fill = INPUT_FILL
            body.protection = Protection(locked=False)
    last = column_letter(c0 + len(table.columns) - 1)
    ref = f"{column_letter(c0)}{hr}:{last}{hr + 1}"
    xl = XlTable(displayName=table.name, ref=ref)
    style = "TableStyleMedium2" if table.role != k.OUTPUT else "TableStyleLight15"
    xl.tableStyleInfo = TableStyleInfo(name=style, showRowStripes=True)
    ws.add_table(xl)
    ws.freeze_panes = ws.cell(hr + 1, c0)
    print_setup(ws, f"{hr - 1}:{hr}")  # units and headers on every printed page
    if table.name in DEPENDS:
        add_stamp_cell(wb, ws, table)
    if table.role == k.OUTPUT:
        ws.sheet_properties.tabColor = TAB_REVIEW if table.sheet in REVIEW_TAB_SHEETS else TAB_OUTPUT
        protect(ws)
    else:
        ws.sheet_properties.tabColor = TAB_INPUT
        add_validation(ws, table)


def unit_label(unit: str):
    """A unit as the sheet shows it: "currency" is the Settings currency (a formula on the named cell)."""
    if "currency" not in unit:
        return unit
    head, _, tail = unit.partition("currency")
    parts = [f'"{head}"'] if head else []
    parts.append("Currency")
    if tail:
        parts.append(f'"{tail}"')
    return "=" + "&".join(parts)


STAMP_CELL = "E1"  # right of the title: which run computed this table, from which inputs, and whether stale


def add_stamp_cell(wb: Workbook, ws, table: k.Table) -> None:
    cell = ws[STAMP_CELL]
    cell.value = "not computed yet"
    cell.font = UNIT
    cell.protection = Protection(locked=False)  # the add-in writes it on a protected sheet
    name = stamp_name(table)
    wb.defined_names[name] = DefinedName(name, attr_text=f"{quote(ws.title)}!${STAMP_CELL[0]}${STAMP_CELL[1:]}")


def protect(ws) -> None:
    """Protected without a password: a guard against accidental typing, not a security feature."""
    ws.protection.sheet = True
    ws.protection.autoFilter = False  # False = allowed
    ws.protection.sort = False
    ws.protection.formatColumns = False
    ws.protection.selectLockedCells = False
    ws.protection.selectUnlockedCells = False


def add_validation(ws, table: k.Table) -> None:
    first = table.header_row + 1
    for j, col in enumerate(table.columns):
        if not col.editable or col.formula:
            continue
        letter = column_letter(table.first_col + j)
        dv = None
        if col.kind == k.CHOICE:
            dv = DataValidation(type="list", formula1='"' + ",".join(col.choices) + '"', allow_blank=not col.required)
        elif col.kind in (k.NUMBER, k.PERCENT, k.INTEGER) and col.min is not None:
            kind = "whole" if col.kind == k.INTEGER else "decimal"
            if col.max is not None:
                dv = DataValidation(type=kind, operator="between", formula1=str(col.min), formula2=str(col.max))
            else:
                dv = DataValidation(type=kind, operator="greaterThanOrEqual" if col.min_inclusive else "greaterThan",
                                    formula1=str(col.min))
        elif col.kind in (k.NUMBER, k.PERCENT):
            dv = DataValidation(type="decimal", operator="between", formula1="-1E+12", formula2="1E+12")
        elif col.kind == k.DATE:
            dv = DataValidation(type="date", operator="greaterThan", formula1="1")
        if dv is None:
            continue
        dv.allow_blank = not col.required
        dv.error = col.help or f"{col.header}: {'one of ' + ', '.join(col.choices) if col.choices else col.kind}"
        dv.errorTitle = f"{table.sheet}: {col.header}"
        dv.prompt = col.help or ""
        dv.showErrorMessage = True
        dv.showInputMessage = bool(col.help)
        dv.add(f"{letter}{first}:{letter}{MAX_ROW}")
        ws.add_data_validation(dv)


def add_settings_sheet(wb: Workbook) -> None:
    ws = wb.create_sheet(k.SETTINGS_SHEET)
    ws.sheet_properties.tabColor = TAB_INPUT
    title_block(ws, "Settings", "Named cells the planning steps read. Yellow cells are yours to change.")
    for j, head in enumerate(("Setting", "Value", "Unit", "What it means", "Name"), start=1):
        ws.cell(4, j, head).font = BOLD
    for i, s in enumerate(k.SETTINGS):
        add_setting_row(wb, ws, 5 + i, s)
    for letter, width in zip("ABCDE", (20, 14, 10, 56, 16)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A5"
    print_setup(ws)


def add_setting_row(wb: Workbook, ws, r: int, s: k.Setting) -> None:
    """One setting on row ``r`` of the Settings sheet: label, value cell (named ``s.name``, yellow, with its
    validation), unit, meaning and name. The template and `sop-xl upgrade` (a setting added since) share it."""
    ws.cell(r, 1, s.label)
    # TRUE/FALSE as text: LibreOffice turns a boolean cell into a =FALSE() formula (the published
    # values-only copy must hold none); validation reads text and Excel's booleans alike.
    cell = ws.cell(r, 2, ("TRUE" if s.default else "FALSE") if s.kind == k.BOOL else s.default)
    cell.fill = INPUT_FILL
    cell.number_format = {k.DATE: "yyyy-mm-dd", k.PERCENT: "0.0%", k.INTEGER: "0"}.get(s.kind, "General")
    ws.cell(r, 3, s.unit).font = UNIT
    ws.cell(r, 4, s.help)
    ws.cell(r, 5, s.name).font = UNIT
    wb.defined_names[s.name] = DefinedName(s.name, attr_text=f"{quote(k.SETTINGS_SHEET)}!$B${r}")
    dv = None
    if s.choices:
        dv = DataValidation(type="list", formula1='"' + ",".join(s.choices) + '"')
    elif s.kind == k.BOOL:
        dv = DataValidation(type="list", formula1='"TRUE,FALSE"')
    elif s.kind in (k.INTEGER, k.NUMBER, k.PERCENT) and s.min is not None:
        dv = DataValidation(type="whole" if s.kind == k.INTEGER else "decimal", operator="between",
                            formula1=str(s.min), formula2=str(s.max))
    elif s.kind == k.DATE:
        dv = DataValidation(type="date", operator="greaterThan", formula1="1")
    if dv is not None:
        dv.error, dv.errorTitle, dv.showErrorMessage = s.help, s.label, True
        dv.add(f"B{r}")
        ws.add_data_validation(dv)


START_TEXT = (
    ("How to use this workbook", True),
    ("1. Paste or type inputs on the blue sheets: Items, Actuals, Resources, Routing, BOM, Receipts (open "
     "orders), SupplyLimits, Costs, Budget.", False),
    ("2. S&OP tab > Forecast: statistical forecast per item; then adjust the Demand sheet "
     "(SalesOverride, EventUplift).", False),
    ("3. S&OP tab > Balance: a plan that fits capacity and supply, with unmet demand and bottlenecks; it "
     "also refreshes Requirements, Financials and Exceptions.", False),
    ("4. S&OP tab > Cost roll-up and Financials: unit costs from the BOM, revenue and margin against budget.", False),
    ("5. S&OP tab > Scenarios, Snapshot, Publish for review.", False),
    ("Headless: sop-xl run WORKBOOK.xlsm (see README). Errors name the sheet, table, row and column.", False),
    ("Green sheets are written by the add-in and protected (no password). Grey columns are computed.", False),
)


NEEDS_ADDIN = "(needs the sop-xl add-in: Windows Excel with Python)"

SHEET_NOTES = {
    k.DASHBOARD_SHEET: "KPIs, monthly plan against capacity and budget, charts, utilisation heat map.",
    k.SETTINGS_SHEET: "Plan start, horizon, forecast model, solver, exception thresholds (named cells).",
    k.XLWINGS_CONF_SHEET: "Which Python runs the add-in (sop-xl setup-excel fills it).",
}


START_B_WIDTH = 110
START_CHARS_PER_LINE = 120  # of proportional text in a column START_B_WIDTH digits wide, to be safe


def add_start_sheet(wb: Workbook, ws=None) -> None:
    """The Start sheet on ``ws`` (a new workbook's first sheet by default; upgrade passes a new sheet)."""
    ws = ws if ws is not None else wb.active
    ws.title = k.START_SHEET
    ws.sheet_properties.tabColor = TAB_REVIEW
    title_block(ws, "S&OP planning workbook", "sop-xl: forecasting, capacity balancing and BOM costing in Python.")
    ws["A4"] = "Last run"
    ws["A4"].font = BOLD
    ws["B4"] = "not run yet"
    ws["B4"].fill = COMPUTED_FILL
    wb.defined_names[k.LAST_RUN_NAME] = DefinedName(k.LAST_RUN_NAME, attr_text=f"{quote(k.START_SHEET)}!$B$4")
    # The family pages are generated sheets: their one stamp lives here, and each page shows it
    ws["A5"] = FAMILY_PAGES.sheet.capitalize()
    ws["A5"].font = BOLD
    ws["B5"] = "not computed yet"
    ws["B5"].fill = COMPUTED_FILL
    ws["B5"].font = Font(name=FONT, size=9, color="595959")  # the stamp is long: it fits column B at 9 pt
    wb.defined_names[FAMILY_PAGES.stamp] = DefinedName(FAMILY_PAGES.stamp, attr_text=f"{quote(k.START_SHEET)}!$B$5")
    for i, (text, bold) in enumerate(START_TEXT):
        cell = ws.cell(7 + i, 1, text)
        cell.font = BOLD if bold else Font(name=FONT)
    row = 8 + len(START_TEXT)
    # A cell function example (Windows Excel with Python); LibreOffice and a Mac show #NAME? here.
    hist = k.ACTUALS
    qty = column_letter(hist.first_col + hist.fields.index("qty"))
    first = hist.header_row + 1
    ws.cell(row, 1, "Cell function").font = BOLD
    # Guarded: without the add-in (LibreOffice, a Mac, a browser) the cell says so instead of #NAME?.
    example = ws.cell(row, 2, f"=IFERROR(SOP_MODEL({quote(hist.sheet)}!{qty}{first}:{qty}{first + 35}),"
                              f'"{NEEDS_ADDIN}")')
    example.alignment = Alignment(horizontal="left")
    ws.cell(row + 1, 2, "The model sop-xl picks for the first 36 months of Actuals (Windows Excel with "
                        "Python)").font = SUBTITLE
    row += 3
    ws.cell(row, 1, "Sheets").font = BOLD
    for i, name in enumerate(k.SHEET_ORDER[1:]):
        cell = ws.cell(row + 1 + i, 1, name)
        cell.hyperlink = f"#{quote(name)}!A1"
        cell.font = Font(name=FONT, color="0563C1", underline="single")
        table = k.table_by_sheet(name)
        note = ws.cell(row + 1 + i, 2, table.description if table else SHEET_NOTES.get(name, ""))
        # Wrapped, with the height set: text running past column B would print on extra pages.
        note.alignment = Alignment(wrap_text=True, vertical="top")
        lines = math.ceil(len(note.value) / START_CHARS_PER_LINE)
        if lines > 1:
            ws.row_dimensions[row + 1 + i].height = 15 * lines
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = START_B_WIDTH
    for r in range(7, 7 + len(START_TEXT)):
        ws.cell(r, 1).alignment = Alignment(wrap_text=False)
    print_setup(ws)


# Only keys with a value: xlwings reads column A (keys) and B (values) from A1 down, without headers,
# and a key present with an empty value overrides the user's own xlwings.conf file (an empty
# Interpreter_Win would hide the interpreter set there).
XLWINGS_CONF = (
    # key, value, why
    ("UDF Modules", "sop_xl.udfs", "Python module with the SOP_ functions"),
    ("Use UDF Server", True, "Keep Python running between calls: fast recalculation"),
    ("Show Console", False, "Show a console window with Python's output"),
)
# Keys a user or setup-excel may add (as a row directly under the others), explained beside them.
XLWINGS_CONF_OPTIONAL = (
    "Keys you may add as a new row under the others (no empty rows; a key with no value overrides "
    "your own xlwings.conf file):",
    "Interpreter_Win: full path to pythonw.exe of the environment with sop-xl (sop-xl setup-excel adds it)",
    "Interpreter_Mac: full path to python on macOS (macros only; UDFs need Windows)",
    "PYTHONPATH: extra folders for Python (not needed when sop-xl is installed)",
)


def add_xlwings_conf_sheet(wb: Workbook) -> None:
    ws = wb.create_sheet(k.XLWINGS_CONF_SHEET)
    ws.sheet_properties.tabColor = TAB_SETUP
    for i, (key, value, why) in enumerate(XLWINGS_CONF, start=1):
        ws.cell(i, 1, key)
        ws.cell(i, 2, value)
        ws.cell(i, 3, why).font = UNIT
    for i, text in enumerate(XLWINGS_CONF_OPTIONAL, start=1):  # column E: apart from the keys xlwings reads
        ws.cell(i, 5, text).font = UNIT
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 60
    ws.column_dimensions["C"].width = 70
    ws.column_dimensions["E"].width = 100


def quote(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'" if not sheet.isalnum() else sheet
