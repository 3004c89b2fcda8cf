"""Build workbook/SOP_Template.xlsm from the text sources in the repository.

Layout comes from the contract, VBA modules from text files (ours in sop_xl/template/vba/, xlwings'
standalone module and Dictionary class from the installed xlwings, the UDF wrappers generated from
sop_xl.udfs), the ribbon from customUI14.xml. The build is deterministic: the committed template
equals a fresh build byte for byte (a test checks).
"""
from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.workbook.defined_name import DefinedName

from sop_xl import contract as k
from sop_xl.workbook import ribbon, vba
from sop_xl.workbook.safe_io import atomic_write_bytes
from sop_xl.template.dashboard import add_dashboard, add_scenario_chart
from sop_xl.template.layout import add_settings_sheet, add_start_sheet, add_table_sheet, add_xlwings_conf_sheet
from sop_xl.template.udf_vba import MODULE_NAME as UDF_MODULE
from sop_xl.template.udf_vba import register_source, wrapper_source

REPO_TEMPLATE = Path(__file__).resolve().parents[2] / "workbook" / "SOP_Template.xlsm"
FIXED_TIME = datetime(2026, 1, 1)


def layout_workbook() -> Workbook:
    wb = Workbook()
    add_start_sheet(wb)
    for sheet in k.SHEET_ORDER[1:]:
        add_sheet(wb, sheet)
    wb.defined_names[k.FORMAT_NAME] = DefinedName(k.FORMAT_NAME, attr_text=str(k.WORKBOOK_FORMAT))
    wb.properties.creator = "sop-xl"
    wb.properties.title = "S&OP planning workbook"
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    return wb


def add_sheet(wb: Workbook, sheet: str) -> None:
    """One sheet of the template (not Start), appended to ``wb``: the build and `sop-xl upgrade` share it."""
    if sheet == k.DASHBOARD_SHEET:
        add_dashboard(wb)
    elif sheet == k.SETTINGS_SHEET:
        add_settings_sheet(wb)
    elif sheet == k.XLWINGS_CONF_SHEET:
        add_xlwings_conf_sheet(wb)
    else:
        table = k.table_by_sheet(sheet)
        add_table_sheet(wb, table)
        if table is k.SCENARIO_RESULTS:
            add_scenario_chart(wb[sheet])


def vba_modules() -> list:
    modules = vba.xlwings_modules() + vba.load_source_modules()
    modules.append(vba.VbaModule(UDF_MODULE, "standard", wrapper_source()))
    modules.append(vba.VbaModule("SopUdfRegister", "standard", register_source()))
    # Descriptions and the S&OP category for the Insert Function dialog, registered on open.
    modules.append(vba.VbaModule("ThisWorkbook", "document",
                                 "Private Sub Workbook_Open()\n    SopRegisterFunctions\nEnd Sub\n"))
    return modules


def build_template(out: Path | str = REPO_TEMPLATE) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir) / "template.xlsm"
        layout_workbook().save(tmp)
        vba.write_vba_project(tmp, vba_modules())
        ribbon.add_custom_ui(tmp, ribbon.template_custom_ui())
        atomic_write_bytes(out, tmp.read_bytes())
    return out


def template_path() -> Path:
    """The committed template in a source checkout; otherwise one built once into the user's cache."""
    if REPO_TEMPLATE.exists():
        return REPO_TEMPLATE
    import os

    from sop_xl import __version__
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sop-xl"
    target = cache / f"SOP_Template-{__version__}.xlsm"
    if not target.exists():
        build_template(target)
    return target
