"""The workbook's custom ribbon (Office Fluent UI, customUI14) inside the .xlsm package.

Excel 2010 and later load ``customUI/customUI14.xml`` (namespace
http://schemas.microsoft.com/office/2009/07/customui) when the package's root relationships
(``_rels/.rels``) point at it with the type
http://schemas.microsoft.com/office/2007/relationships/ui/extensibility. The part itself needs no
content type of its own: the ``xml`` Default (``application/xml``) covers it, else an Override is
added.

openpyxl (keep_vba=True) copies the customUI part on save but writes ``_rels/.rels`` anew without
the relationship, so the ribbon is gone. Call :func:`restore_custom_ui` (same as
:func:`add_custom_ui`) after every openpyxl save. Writes are atomic and canonical (see
:mod:`sop_xl.workbook.package`): the same package and XML give the same bytes, and adding again changes nothing.
All XML read here is parsed with defusedxml.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path

from defusedxml import ElementTree as SafeET

from sop_xl.workbook.package import (
    CONTENT_TYPES,
    ROOT_RELS,
    content_types,
    edit_content_types,
    read_package,
    relationships,
    relationships_xml,
    write_package,
)
from sop_xl.workbook.vba import VBA_SOURCE_DIR

__all__ = [
    "CUSTOMUI14_NS",
    "CUSTOMUI14_PART",
    "UI_REL_TYPE",
    "add_custom_ui",
    "has_custom_ui",
    "read_custom_ui",
    "restore_custom_ui",
    "ribbon_actions",
    "ribbon_callbacks",
    "template_custom_ui",
]

CUSTOMUI14_NS = "http://schemas.microsoft.com/office/2009/07/customui"
CUSTOMUI12_NS = "http://schemas.microsoft.com/office/2006/01/customui"
CUSTOMUI14_PART = "customUI/customUI14.xml"
#: Relationship type of customUI14.xml (Office 2010+).
UI_REL_TYPE = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
#: Relationship type of the Office 2007 customUI.xml, read as a fallback only.
UI12_REL_TYPE = "http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"
#: The Id given to our relationship in _rels/.rels.
UI_REL_ID = "sopCustomUI"

#: Attributes of the Fluent UI schema whose value names a VBA callback.
CALLBACK_ATTRIBUTES = (
    "onLoad", "loadImage", "onAction", "onChange", "getEnabled", "getVisible", "getLabel",
    "getImage", "getScreentip", "getSupertip", "getDescription", "getKeytip", "getSize",
    "getShowLabel", "getShowImage", "getPressed", "getText", "getItemCount", "getItemID",
    "getItemLabel", "getItemImage", "getItemScreentip", "getItemSupertip", "getSelectedItemID",
    "getSelectedItemIndex", "getTitle", "getContent", "getHelperText", "getAltText", "getTarget",
    "getStyle", "getImageMso", "getImageCustom", "getTabState", "onShow", "onHide",
)


def template_custom_ui() -> str:
    """The ribbon of the workbook template: ``sop_xl/template/vba/customUI14.xml``."""
    return (VBA_SOURCE_DIR / "customUI14.xml").read_text(encoding="utf-8")


def _parse_custom_ui(customui_xml: str | bytes):
    data = customui_xml.encode("utf-8") if isinstance(customui_xml, str) else customui_xml
    return SafeET.fromstring(data)


def _checked_custom_ui(customui_xml: str) -> bytes:
    """``customui_xml`` as UTF-8 bytes, after checking it is a well-formed customUI14 document."""
    root = _parse_custom_ui(customui_xml)
    if root.tag != f"{{{CUSTOMUI14_NS}}}customUI":
        raise ValueError(f"Not a customUI14 document (root {root.tag!r}); the root must be "
                         f"<customUI xmlns=\"{CUSTOMUI14_NS}\">")
    text = customui_xml.lstrip("\ufeff")
    head = text[:200].lower()
    if head.startswith("<?xml") and "encoding" in head.split("?>", 1)[0] and "utf-8" not in head:
        raise ValueError("customUI XML must be declared UTF-8")
    return text.encode("utf-8")


def ribbon_callbacks(customui_xml: str) -> dict[str, list[str]]:
    """Every callback the ribbon names, as attribute -> callback names (document order, unique)."""
    found: dict[str, list[str]] = {}
    for element in _parse_custom_ui(customui_xml).iter():
        for attribute in CALLBACK_ATTRIBUTES:
            value = element.get(attribute)
            if value:
                names = found.setdefault(attribute, [])
                if value not in names:
                    names.append(value)
    return found


def ribbon_actions(customui_xml: str) -> list[str]:
    """All ``onAction`` callback names in the ribbon, in document order, each once."""
    return ribbon_callbacks(customui_xml).get("onAction", [])


def _resolve(target: str) -> str:
    """A root relationship's target as a part name."""
    return posixpath.normpath(target.lstrip("/")) if target.startswith("/") else posixpath.normpath(target)


def _ui_target(parts: dict[str, bytes]) -> str | None:
    if ROOT_RELS not in parts:
        return None
    rels = relationships(parts[ROOT_RELS])
    for kind in (UI_REL_TYPE, UI12_REL_TYPE):  # Excel 2010+ prefers customUI14 when both exist
        for rel in rels:
            if rel.get("Type") == kind and rel.get("TargetMode", "Internal") == "Internal":
                part = _resolve(rel.get("Target", ""))
                if part in parts:
                    return part
    return None


def read_custom_ui(path: str | os.PathLike[str]) -> str | None:
    """The ribbon XML Excel would load from the package, following ``_rels/.rels``; None if none.

    The customUI14 relationship is followed first, then the Office 2007 one. A part without a
    relationship is not loaded by Excel and gives None.
    """
    parts = read_package(path)
    part = _ui_target(parts)
    if part is None:
        return None
    return parts[part].decode("utf-8-sig")


def has_custom_ui(path: str | os.PathLike[str]) -> bool:
    """Whether Excel would load a custom ribbon from the package at ``path``."""
    return read_custom_ui(path) is not None


def add_custom_ui(xlsm_path: str | os.PathLike[str], customui_xml: str | None = None) -> None:
    """Put ``customui_xml`` into the package as customUI/customUI14.xml, related from _rels/.rels.

    ``customui_xml`` defaults to the template's ribbon (:func:`template_custom_ui`). Any other
    customUI14 relationship is replaced by ours (Id ``sopCustomUI``); a [Content_Types].xml
    without an ``xml`` Default of ``application/xml`` gets an Override for the part. Idempotent;
    the file is rewritten atomically and canonically.
    """
    if customui_xml is None:
        customui_xml = template_custom_ui()
    data = _checked_custom_ui(customui_xml)
    target = Path(xlsm_path)
    parts = read_package(target)
    if ROOT_RELS not in parts or CONTENT_TYPES not in parts:
        raise ValueError(f"{target.name}: not an OPC package (no _rels/.rels or [Content_Types].xml)")

    rels = relationships(parts[ROOT_RELS])
    kept = [rel for rel in rels if rel.get("Type") != UI_REL_TYPE]
    for rel in rels:  # a part only a replaced relationship pointed at goes with it
        if rel.get("Type") == UI_REL_TYPE and _resolve(rel.get("Target", "")) != CUSTOMUI14_PART:
            parts.pop(_resolve(rel.get("Target", "")), None)
    taken = {rel.get("Id") for rel in kept}
    rel_id = UI_REL_ID
    number = 1
    while rel_id in taken:
        number += 1
        rel_id = f"{UI_REL_ID}{number}"
    kept.append({"Id": rel_id, "Type": UI_REL_TYPE, "Target": CUSTOMUI14_PART})
    parts[ROOT_RELS] = relationships_xml(kept)

    parts[CUSTOMUI14_PART] = data
    defaults, overrides = content_types(parts[CONTENT_TYPES])
    if defaults.get("xml") != "application/xml" and f"/{CUSTOMUI14_PART}" not in overrides:
        parts[CONTENT_TYPES] = edit_content_types(
            parts[CONTENT_TYPES], set_override={f"/{CUSTOMUI14_PART}": "application/xml"})
    write_package(target, parts)


def restore_custom_ui(xlsm_path: str | os.PathLike[str], customui_xml: str | None = None) -> None:
    """Re-add the ribbon after an openpyxl save dropped its relationship (see :func:`add_custom_ui`).

    Without ``customui_xml``, the ribbon part openpyxl carried over is kept if there is one,
    otherwise the template's ribbon is written.
    """
    if customui_xml is None:
        parts = read_package(xlsm_path)
        carried = parts.get(CUSTOMUI14_PART)
        customui_xml = carried.decode("utf-8-sig") if carried is not None else template_custom_ui()
    add_custom_ui(xlsm_path, customui_xml)
