"""OPC packages (the zip inside .xlsx/.xlsm): read parts, edit relationships and content types, and
write a package canonically and atomically.

The zip openpyxl writes is not a pure function of its content: each entry is stamped with the
current time, the parts it copies from a kept VBA archive come in ``set`` order (hash-seed
dependent) and docProps/core.xml holds the save time. :func:`write_package` therefore writes every
package :mod:`sop_xl.workbook.vba` and :mod:`sop_xl.workbook.ribbon` produce with entries in a
canonical order, each dated 1980-01-01 with fixed attributes, deflated at a fixed level;
:func:`pin_core_dates` pins the core dates. The one thing outside our control is zlib itself: a
different zlib build (e.g. zlib-ng) may deflate the same bytes differently. All XML read here is
parsed with defusedxml.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from defusedxml import ElementTree as SafeET

from sop_xl.workbook.safe_io import atomic_write_bytes

__all__ = [
    "CONTENT_TYPES", "CORE_PART", "CT_NS", "PKG_REL_NS", "ROOT_RELS",
    "content_types", "edit_content_types", "package_bytes", "pin_core_dates", "read_package",
    "relationships", "relationships_xml", "write_package",
]

CONTENT_TYPES = "[Content_Types].xml"
ROOT_RELS = "_rels/.rels"
CORE_PART = "docProps/core.xml"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_LEVEL = 6


def _part_order(name: str) -> tuple[int, str]:
    return ({CONTENT_TYPES: 0, ROOT_RELS: 1}.get(name, 2), name)


def package_bytes(parts: Mapping[str, bytes]) -> bytes:
    """A zip of ``parts`` that depends on nothing but their names and bytes.

    [Content_Types].xml first, then _rels/.rels, then the rest by name; every entry dated
    1980-01-01 00:00, made on "MS-DOS" with fixed attributes, deflated at level 6.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as out:
        for name in sorted(parts, key=_part_order):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0o600 << 16  # what zipfile writes for 0 anyway; explicit
            out.writestr(info, parts[name], compresslevel=_ZIP_LEVEL)
    return buffer.getvalue()


def read_package(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every part of the zip package at ``path``, by name (directories left out)."""
    with zipfile.ZipFile(path) as archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: a part is stored twice")
        return {name: archive.read(name) for name in names}


def write_package(path: str | os.PathLike[str], parts: Mapping[str, bytes]) -> None:
    """Atomically write ``parts`` as the canonical zip of :func:`package_bytes` to ``path`` (temporary file
    beside it, fsync, os.replace; the file keeps the permissions of the one it replaces)."""
    atomic_write_bytes(Path(path), package_bytes(parts))


def pin_core_dates(core_xml: bytes, timestamp: str) -> bytes:
    """docProps/core.xml with ``dcterms:created`` and ``dcterms:modified`` set to ``timestamp``."""
    text = core_xml.decode("utf-8")
    text = re.sub(r"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)",
                  lambda m: f"{m.group(1)}{timestamp}{m.group(3)}", text)
    return text.encode("utf-8")



def _attr_escape(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def relationships(rels_xml: bytes) -> list[dict[str, str]]:
    """The relationships of a .rels part, in order, each as its attributes."""
    root = SafeET.fromstring(rels_xml)
    return [dict(element.attrib) for element in root if element.tag == f"{{{PKG_REL_NS}}}Relationship"]


def relationships_xml(rels: Iterable[Mapping[str, str]]) -> bytes:
    """A .rels part holding ``rels``, in order."""
    items = []
    for rel in rels:
        attrs = "".join(f' {key}="{_attr_escape(rel[key])}"'
                        for key in ("Id", "Type", "Target", "TargetMode") if key in rel)
        items.append(f"<Relationship{attrs}/>")
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<Relationships xmlns="{PKG_REL_NS}">{"".join(items)}</Relationships>').encode("utf-8")


def content_types(types_xml: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """(Default extension -> type, Override part name -> type) of [Content_Types].xml."""
    root = SafeET.fromstring(types_xml)
    defaults = {e.get("Extension", "").casefold(): e.get("ContentType", "")
                for e in root if e.tag == f"{{{CT_NS}}}Default"}
    overrides = {e.get("PartName", ""): e.get("ContentType", "")
                 for e in root if e.tag == f"{{{CT_NS}}}Override"}
    return defaults, overrides


def edit_content_types(types_xml: bytes, *, drop_override: Iterable[str] = (),
                        drop_default: Iterable[str] = (), set_override: Mapping[str, str] = {},
                        add_default: Mapping[str, str] = {}) -> bytes:
    """[Content_Types].xml with Overrides/Defaults dropped, set or added (text kept otherwise)."""
    text = types_xml.decode("utf-8")
    for part in drop_override:
        text = re.sub(rf'<Override\b[^>]*\bPartName="{re.escape(part)}"[^>]*/>', "", text)
    for ext in drop_default:
        text = re.sub(rf'<Default\b[^>]*\bExtension="{re.escape(ext)}"[^>]*/>', "", text, flags=re.I)
    for part, kind in set_override.items():
        element = f'<Override PartName="{_attr_escape(part)}" ContentType="{_attr_escape(kind)}"/>'
        pattern = rf'<Override\b[^>]*\bPartName="{re.escape(part)}"[^>]*/>'
        if re.search(pattern, text):
            text = re.sub(pattern, lambda _: element, text, count=1)
        else:
            text = text.replace("</Types>", element + "</Types>", 1)
    for ext, kind in add_default.items():
        if re.search(rf'<Default\b[^>]*\bExtension="{re.escape(ext)}"', text, flags=re.I):
            continue
        element = f'<Default Extension="{_attr_escape(ext)}" ContentType="{_attr_escape(kind)}"/>'
        root = re.search(r"<Types\b[^>]*>", text)
        assert root is not None
        text = text[: root.end()] + element + text[root.end():]
    SafeET.fromstring(text.encode("utf-8"))  # still well-formed
    return text.encode("utf-8")
