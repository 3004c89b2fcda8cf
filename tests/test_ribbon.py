"""The custom ribbon: customUI14.xml in the package, its relationship, and its callbacks."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree.ElementTree import ParseError

import openpyxl
import pytest
from defusedxml import EntitiesForbidden
from openpyxl.chart import BarChart, Reference
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.table import Table

from sop_xl.workbook.ribbon import (
    CUSTOMUI14_NS,
    CUSTOMUI14_PART,
    UI_REL_TYPE,
    add_custom_ui,
    has_custom_ui,
    read_custom_ui,
    restore_custom_ui,
    ribbon_actions,
    ribbon_callbacks,
    template_custom_ui,
)
from sop_xl.workbook.vba import load_source_modules, read_vba_modules, vba_project_bytes, write_vba_project, xlwings_modules

# imageMso names checked against the composite Office icon list (2007/2010 Icons Gallery and
# [MS-CUSTOMUI] imageMso table, as collected in ImageMso's Images.settings); MacroPlay is also what
# xlwings' own add-in ribbon uses. An icon name Office does not know leaves the button without
# an icon (or the ribbon fails to load with "Show add-in user interface errors" on).
KNOWN_IMAGE_MSO = {
    "ChartTrendline", "AlignDistributeHorizontally", "Consolidate", "AccountingFormat", "CompareAndCombine",
    "FileSaveACopy", "FilePublish", "MacroPlay", "DataValidation", "ControlProperties",
    "AcceptInvitation", "Refresh",  # both in ../shared/tools/imagemso_names.txt
}
GROUPS = {
    "Demand": ["SopForecast"],
    "Supply": ["SopBalance"],
    "Finance": ["SopCostRollup", "SopFinancials"],
    "Review": ["SopScenarios", "SopSnapshot", "SopAdoptScenario", "SopPublish"],
    "Cycle": ["SopNewCycle"],
    "Tools": ["SopRunAll", "SopValidate", "SopSetup"],
}
NS = {"ui": CUSTOMUI14_NS}


def make_workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Demand"
    ws.append(["Item", "Qty"])
    ws.append(["A", 10])
    ws.append(["B", 20])
    ws.add_table(Table(displayName="tblDemand", ref="A1:B3"))
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=3), titles_from_data=True)
    ws.add_chart(chart, "D2")
    wb.defined_names["Horizon"] = DefinedName("Horizon", attr_text="Demand!$B$2")
    wb.save(path)
    return path


@pytest.fixture
def template_like(tmp_path) -> Path:
    """A workbook as the template build makes it: openpyxl, then the VBA project, then the ribbon."""
    path = make_workbook(tmp_path / "book.xlsm")
    write_vba_project(path, [*xlwings_modules(), *load_source_modules()])
    add_custom_ui(path, template_custom_ui())
    return path


def _ribbon_subs() -> dict[str, str]:
    code = {m.name: m.code for m in load_source_modules()}["SopRibbon"]
    return {m.group(1): m.group(2) for m in re.finditer(r"^Public Sub (\w+)\(([^)]*)\)", code, re.M)}


# ---------------------------------------------------------------------------------------------
# The template's customUI14.xml
# ---------------------------------------------------------------------------------------------

def test_customui_layout():
    from defusedxml import ElementTree

    root = ElementTree.fromstring(template_custom_ui().encode())
    assert root.tag == f"{{{CUSTOMUI14_NS}}}customUI"
    tabs = root.findall("ui:ribbon/ui:tabs/ui:tab", NS)
    assert [tab.get("label") for tab in tabs] == ["S&OP"]
    groups = tabs[0].findall("ui:group", NS)
    assert {g.get("label"): [b.get("onAction") for b in g.findall("ui:button", NS)] for g in groups} == GROUPS
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    for button in root.iter(f"{{{CUSTOMUI14_NS}}}button"):
        assert button.get("imageMso") in KNOWN_IMAGE_MSO, button.get("id")
        assert button.get("label") and button.get("screentip") and button.get("supertip")


def test_every_action_is_a_public_ribbon_sub():
    actions = ribbon_actions(template_custom_ui())
    subs = _ribbon_subs()
    assert sorted(actions) == sorted(subs)  # each button has its Sub, and each Sub a button
    for action in actions:
        assert subs[action] == "control As IRibbonControl"
    assert set(ribbon_callbacks(template_custom_ui())) == {"onAction"}  # no getEnabled & co to implement


def test_ribbon_actions_and_callbacks():
    xml = (f'<customUI xmlns="{CUSTOMUI14_NS}" onLoad="OnLoad"><ribbon><tabs><tab id="t" label="T">'
           '<group id="g" label="G"><button id="a" label="A" onAction="Go" getEnabled="IsOn"/>'
           '<button id="b" label="B" onAction="Go"/><toggleButton id="c" label="C" onAction="Flip"/>'
           "</group></tab></tabs></ribbon></customUI>")
    assert ribbon_actions(xml) == ["Go", "Flip"]
    assert ribbon_callbacks(xml) == {"onLoad": ["OnLoad"], "onAction": ["Go", "Flip"], "getEnabled": ["IsOn"]}


# ---------------------------------------------------------------------------------------------
# In the package
# ---------------------------------------------------------------------------------------------

def test_add_custom_ui(template_like):
    assert has_custom_ui(template_like)
    assert read_custom_ui(template_like) == template_custom_ui()
    with zipfile.ZipFile(template_like) as archive:
        rels = archive.read("_rels/.rels").decode()
        types = archive.read("[Content_Types].xml").decode()
        assert archive.read(CUSTOMUI14_PART).decode() == template_custom_ui()
    assert rels.count(UI_REL_TYPE) == 1
    assert f'Target="{CUSTOMUI14_PART}"' in rels
    assert 'Extension="xml" ContentType="application/xml"' in types


def test_add_is_idempotent_and_deterministic(template_like, tmp_path):
    first = template_like.read_bytes()
    add_custom_ui(template_like, template_custom_ui())
    assert template_like.read_bytes() == first
    restore_custom_ui(template_like)
    assert template_like.read_bytes() == first
    other = tmp_path / "other"
    other.mkdir()
    again = make_workbook(other / "book.xlsm")
    write_vba_project(again, [*xlwings_modules(), *load_source_modules()])
    add_custom_ui(again)
    assert again.read_bytes() == first


def test_openpyxl_save_drops_the_ribbon_and_restore_brings_it_back(template_like):
    vba = vba_project_bytes(template_like)
    modules = read_vba_modules(template_like)

    wb = openpyxl.load_workbook(template_like, keep_vba=True)
    wb["Demand"]["B3"] = 25
    wb.save(template_like)
    # openpyxl carries the part and the project, but not the relationship: Excel shows no ribbon.
    assert not has_custom_ui(template_like)
    with zipfile.ZipFile(template_like) as archive:
        assert CUSTOMUI14_PART in archive.namelist()
    assert vba_project_bytes(template_like) == vba

    restore_custom_ui(template_like)
    assert has_custom_ui(template_like)
    assert read_custom_ui(template_like) == template_custom_ui()
    assert vba_project_bytes(template_like) == vba
    assert read_vba_modules(template_like) == modules

    from pyopenvba import check_file

    report = check_file(template_like)
    assert report.ok, report.issues
    wb = openpyxl.load_workbook(template_like)
    assert wb["Demand"]["B3"].value == 25
    assert "tblDemand" in wb["Demand"].tables
    assert "Horizon" in wb.defined_names
    with zipfile.ZipFile(template_like) as archive:
        assert any(name.startswith("xl/charts/chart") for name in archive.namelist())
        types = archive.read("[Content_Types].xml").decode()
    assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in types


def test_restore_writes_the_given_ribbon(template_like):
    wb = openpyxl.load_workbook(template_like, keep_vba=True)
    wb.save(template_like)
    custom = template_custom_ui().replace('label="Forecast"', 'label="Forecast!"')
    restore_custom_ui(template_like, custom)
    assert read_custom_ui(template_like) == custom


def test_no_ribbon(tmp_path):
    path = make_workbook(tmp_path / "plain.xlsm")
    assert read_custom_ui(path) is None and not has_custom_ui(path)
    # A part Excel is not pointed at is not a ribbon.
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(CUSTOMUI14_PART, template_custom_ui())
    assert not has_custom_ui(path)


def test_restore_without_a_carried_part_writes_the_template(tmp_path):
    path = make_workbook(tmp_path / "plain.xlsm")
    restore_custom_ui(path)
    assert read_custom_ui(path) == template_custom_ui()


def test_replaces_another_customui14_relationship(tmp_path):
    path = make_workbook(tmp_path / "old.xlsm")
    old = f'<customUI xmlns="{CUSTOMUI14_NS}"/>'
    with zipfile.ZipFile(path) as archive:
        parts = {n: archive.read(n) for n in archive.namelist()}
    parts["_rels/.rels"] = parts["_rels/.rels"].replace(
        b"</Relationships>",
        f'<Relationship Id="rId9" Type="{UI_REL_TYPE}" Target="customUI/old14.xml"/></Relationships>'.encode())
    parts["customUI/old14.xml"] = old.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    assert read_custom_ui(path) == old

    add_custom_ui(path, template_custom_ui())
    assert read_custom_ui(path) == template_custom_ui()
    with zipfile.ZipFile(path) as archive:
        assert "customUI/old14.xml" not in archive.namelist()
        assert archive.read("_rels/.rels").decode().count(UI_REL_TYPE) == 1


def test_override_when_no_xml_default(tmp_path):
    path = make_workbook(tmp_path / "types.xlsm")
    with zipfile.ZipFile(path) as archive:
        parts = {n: archive.read(n) for n in archive.namelist()}
    parts["[Content_Types].xml"] = re.sub(rb'<Default Extension="xml"[^>]*/>', b"", parts["[Content_Types].xml"])
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    add_custom_ui(path, template_custom_ui())
    with zipfile.ZipFile(path) as archive:
        types = archive.read("[Content_Types].xml").decode()
    assert f'<Override PartName="/{CUSTOMUI14_PART}" ContentType="application/xml"/>' in types


@pytest.mark.parametrize("xml, error", [
    ('<customUI xmlns="http://schemas.microsoft.com/office/2006/01/customui"/>', ValueError),  # Office 2007
    (f'<customUI xmlns="{CUSTOMUI14_NS}"><ribbon>', ParseError),  # not well-formed
    (f'<!DOCTYPE x [<!ENTITY a "aaaa">]><customUI xmlns="{CUSTOMUI14_NS}" label="&a;"/>',
     EntitiesForbidden),  # defusedxml refuses entity declarations
])
def test_bad_customui_is_refused(tmp_path, xml, error):
    path = make_workbook(tmp_path / "bad.xlsm")
    before = path.read_bytes()
    with pytest.raises(error):
        add_custom_ui(path, xml)
    assert path.read_bytes() == before
