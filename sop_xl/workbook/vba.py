"""The VBA project of the workbook template: written from text sources, read back for checks.

No Excel is needed (or available) at build time. openpyxl writes the workbook but cannot make a
``vbaProject.bin``; pyOpenVBA (pure Python) adds a project to a file that has none, the way Excel
does for a first macro: a document module for the workbook and one per sheet (``ThisWorkbook``,
``Sheet1`` ...), the code names written into workbook.xml and the sheets, the relationship and the
content type. Our standard and class modules are added to that project.

Text conventions
----------------
* ``VbaModule.code`` uses ``'\\n'`` line endings. Modules are written into the project with CRLF,
  as the VBA editor stores them, and :func:`read_vba_modules` gives ``'\\n'`` back.
* ``code`` may start with an ``Attribute VB_...`` header block (the xlwings ``Dictionary`` class
  keeps its own: ``VB_Exposed = True`` and a ``VB_Description``). Without one, pyOpenVBA
  synthesises the header the VBA editor writes. :func:`read_vba_modules` strips the header, so
  compare it with :attr:`VbaModule.body`.

Determinism
-----------
pyOpenVBA starts from a fixed, Excel-authored empty project (same PROJECT stream, same CFB
directory, no timestamps or GUIDs invented per run), so ``vbaProject.bin`` is a pure function of
the modules. The zip around it is not: openpyxl stamps each entry with the current time, orders
the parts it copies from a kept VBA archive by iterating a ``set`` (hash-seed dependent) and puts
the save time into docProps/core.xml. :func:`write_package` therefore rewrites every package this
module or :mod:`sop_xl.workbook.ribbon` writes: entries in a canonical order, each dated 1980-01-01 with
fixed attributes, deflated at a fixed level; :func:`write_vba_project` also pins the core
``created``/``modified`` dates to :data:`TEMPLATE_TIMESTAMP`. The one thing outside our control
is zlib itself: a different zlib build (e.g. zlib-ng) may deflate the same bytes differently.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from defusedxml import ElementTree as SafeET

__all__ = [
    "TEMPLATE_TIMESTAMP",
    "VBA_SOURCE_DIR",
    "VbaModule",
    "load_source_modules",
    "read_vba_modules",
    "strip_attribute_header",
    "vba_project_bytes",
    "write_package",
    "write_vba_project",
    "xlwings_modules",
    "xlwings_version_in_module",
]

ModuleKind = Literal["standard", "class", "document"]

#: Our own VBA text sources (``.bas`` standard modules, ``.cls`` class modules).
VBA_SOURCE_DIR = Path(__file__).resolve().parents[1] / "template" / "vba"

#: The date written into docProps/core.xml (created and modified) of a built template.
TEMPLATE_TIMESTAMP = "2000-01-01T00:00:00Z"

VBA_PART = "xl/vbaProject.bin"
CONTENT_TYPES = "[Content_Types].xml"
ROOT_RELS = "_rels/.rels"
WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
CORE_PART = "docProps/core.xml"

XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
VBA_CONTENT = "application/vnd.ms-office.vbaProject"
VBA_REL_TYPE = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_LEVEL = 6
_HEADER_LINE = re.compile(r"^Attribute VB_\w+\s*=.*$")
_HEADER_NAME = re.compile(r'^Attribute VB_Name\s*=\s*"([^"]*)"', re.MULTILINE)


@dataclass(frozen=True)
class VbaModule:
    """One VBA module: its name, kind and source text ('\\n' line endings)."""

    name: str
    kind: ModuleKind
    code: str

    def __post_init__(self) -> None:
        if self.kind not in ("standard", "class", "document"):
            raise ValueError(f"VBA module {self.name!r}: unknown kind {self.kind!r}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,30}", self.name):
            raise ValueError(f"Not a valid VBA module name: {self.name!r}")
        object.__setattr__(self, "code", _lf(self.code))

    @property
    def body(self) -> str:
        """The code without its leading ``Attribute VB_...`` header: what the VBA editor shows."""
        return strip_attribute_header(self.code)


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------

def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _crlf(text: str) -> str:
    return _lf(text).replace("\n", "\r\n")


def strip_attribute_header(code: str) -> str:
    """``code`` ('\\n' or CRLF) without the leading block of ``Attribute VB_...`` lines, '\\n' endings.

    Only the module header goes; procedure attributes inside the body (``Attribute Item.VB_UserMemId
    = 0``) are part of the stored source and stay.
    """
    lines = _lf(code).split("\n")
    at = 0
    while at < len(lines) and _HEADER_LINE.match(lines[at]):
        at += 1
    return "\n".join(lines[at:])


def _header_of(code: str) -> str:
    body = strip_attribute_header(code)
    code = _lf(code)
    return code[: len(code) - len(body)]


def load_source_modules(folder: str | os.PathLike[str] = VBA_SOURCE_DIR) -> list[VbaModule]:
    """Our VBA text sources: every ``*.bas`` (standard) and ``*.cls`` (class) in ``folder``, by name.

    Sources may be stored with LF or CRLF; they are read as UTF-8 and must be ASCII-safe for the
    project's code page (1252): a module holding other characters raises ``ValueError``.
    """
    kinds = {".bas": "standard", ".cls": "class"}
    modules = []
    for path in sorted(Path(folder).iterdir(), key=lambda p: p.name.casefold()):
        kind = kinds.get(path.suffix.lower())
        if kind is None or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        try:
            text.encode("cp1252")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{path.name}: not representable in code page 1252: {exc}") from exc
        modules.append(VbaModule(path.stem, kind, text))  # type: ignore[arg-type]
    return modules


# ---------------------------------------------------------------------------------------------
# xlwings' standalone module, from the installed package
# ---------------------------------------------------------------------------------------------

def _xlwings_dir() -> Path:
    spec = importlib.util.find_spec("xlwings")
    if spec is None or spec.origin is None:
        raise RuntimeError("xlwings is not installed")
    return Path(spec.origin).parent


def xlwings_modules() -> list[VbaModule]:
    """The standalone ``xlwings`` module and its ``Dictionary`` class, from the installed xlwings.

    They are taken from ``quickstart_standalone.xlsm``, the file ``xlwings quickstart --standalone``
    copies, so they always match the installed (pinned) xlwings: the module names its DLL by version
    and declares ``XLWINGS_VERSION``. The ``xlwings`` module there is ``xlwings.bas`` itself (the
    add-in-free variant with ``#Const App = "Microsoft Excel"``); ``Dictionary`` is VBA-Dictionary,
    which the module uses on macOS in place of ``Scripting.Dictionary``.
    """
    return list(_xlwings_modules())


@functools.lru_cache(maxsize=1)
def _xlwings_modules() -> tuple[VbaModule, ...]:
    from oletools.olevba import VBA_Parser

    source = _xlwings_dir() / "quickstart_standalone.xlsm"
    found: dict[str, str] = {}
    parser = VBA_Parser(str(source))
    try:
        for _, _, filename, code in parser.extract_macros():
            if isinstance(code, bytes):
                code = code.decode("cp1252")
            found[os.path.splitext(filename)[0]] = _lf(code)
    finally:
        parser.close()
    missing = {"xlwings", "Dictionary"} - set(found)
    if missing:
        raise RuntimeError(f"{source} has no module(s) {sorted(missing)}")
    modules = [VbaModule("xlwings", "standard", found["xlwings"]),
               VbaModule("Dictionary", "class", found["Dictionary"])]
    installed = importlib.metadata.version("xlwings")
    embedded = xlwings_version_in_module(modules[0].code)
    if embedded != installed:
        raise RuntimeError(f"xlwings {installed} is installed, but its standalone module says {embedded}")
    return tuple(modules)


_VERSION_PATTERNS = (
    re.compile(r'^\s*(?:Public\s+)?Const\s+XLWINGS_VERSION\s+As\s+String\s*=\s*"([^"]+)"', re.I | re.M),
    re.compile(r'xlwings(?:32|64)-([0-9][0-9A-Za-z.\-+]*)\.dll', re.I),
    re.compile(r"^'Version:\s*(\S+)", re.M),
)


def xlwings_version_in_module(code: str) -> str:
    """The xlwings version a standalone ``xlwings`` VBA module was made for.

    Read from ``Public Const XLWINGS_VERSION As String = "..."``, else from the DLL name
    (``xlwings64-<version>.dll``), else from the ``'Version:`` comment. Raises ``ValueError``
    when the code names none.
    """
    for pattern in _VERSION_PATTERNS:
        found = pattern.search(code)
        if found:
            return found.group(1)
    raise ValueError("No xlwings version found in the VBA module")


# ---------------------------------------------------------------------------------------------
# Package (zip) writing: canonical, atomic
# ---------------------------------------------------------------------------------------------

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


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync and os.replace
    (the project's one crash-safe writer; the file keeps the permissions of the one it replaces)."""
    from sop_xl.workbook.safe_io import atomic_write_bytes

    atomic_write_bytes(Path(path), data)


def write_package(path: str | os.PathLike[str], parts: Mapping[str, bytes]) -> None:
    """Atomically write ``parts`` as the canonical zip of :func:`package_bytes` to ``path``."""
    atomic_write(path, package_bytes(parts))


def pin_core_dates(core_xml: bytes, timestamp: str = TEMPLATE_TIMESTAMP) -> bytes:
    """docProps/core.xml with ``dcterms:created`` and ``dcterms:modified`` set to ``timestamp``."""
    text = core_xml.decode("utf-8")
    text = re.sub(r"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)",
                  lambda m: f"{m.group(1)}{timestamp}{m.group(3)}", text)
    return text.encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Package XML edits (content types, relationships)
# ---------------------------------------------------------------------------------------------

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


def _content_types(types_xml: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """(Default extension -> type, Override part name -> type) of [Content_Types].xml."""
    root = SafeET.fromstring(types_xml)
    defaults = {e.get("Extension", "").casefold(): e.get("ContentType", "")
                for e in root if e.tag == f"{{{CT_NS}}}Default"}
    overrides = {e.get("PartName", ""): e.get("ContentType", "")
                 for e in root if e.tag == f"{{{CT_NS}}}Override"}
    return defaults, overrides


def _edit_content_types(types_xml: bytes, *, drop_override: Iterable[str] = (),
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


def _without_vba_project(parts: dict[str, bytes]) -> dict[str, bytes]:
    """``parts`` with any VBA project (part, relationship, content type) taken out."""
    parts = dict(parts)
    parts.pop(VBA_PART, None)
    for name in [n for n in parts if n.startswith("xl/vbaProjectSignature")]:
        parts.pop(name)
    if WORKBOOK_RELS in parts:
        # Cut out textually, so that taking out the project pyOpenVBA added gives back the very bytes
        # it started from (a rebuild is then a fixed point).
        text = parts[WORKBOOK_RELS].decode("utf-8")
        pattern = re.compile(r"<Relationship\b[^>]*?(?:/>|>\s*</Relationship>)")
        kept = pattern.sub(lambda m: "" if f'Type="{VBA_REL_TYPE}"' in m.group() else m.group(), text)
        if kept != text:
            parts[WORKBOOK_RELS] = kept.encode("utf-8")
            relationships(parts[WORKBOOK_RELS])  # still well-formed
    defaults, overrides = _content_types(parts[CONTENT_TYPES])
    drop_override = [p for p, kind in overrides.items() if kind == VBA_CONTENT]
    drop_default = ["bin"] if defaults.get("bin") == VBA_CONTENT else []
    if drop_override or drop_default:
        parts[CONTENT_TYPES] = _edit_content_types(parts[CONTENT_TYPES], drop_override=drop_override,
                                                   drop_default=drop_default)
    return parts


def _as_macro_enabled(parts: dict[str, bytes]) -> dict[str, bytes]:
    """``parts`` with the workbook part typed as a macro-enabled workbook.

    A fresh openpyxl Workbook saved as .xlsm keeps the .xlsx main content type; Excel refuses to
    open an .xlsm whose workbook part is typed as .xlsx.
    """
    _, overrides = _content_types(parts[CONTENT_TYPES])
    if overrides.get("/xl/workbook.xml") != XLSM_MAIN:
        parts = dict(parts)
        parts[CONTENT_TYPES] = _edit_content_types(parts[CONTENT_TYPES],
                                                   set_override={"/xl/workbook.xml": XLSM_MAIN})
    return parts


# ---------------------------------------------------------------------------------------------
# Writing and reading the project
# ---------------------------------------------------------------------------------------------

def _module_source(module: VbaModule) -> str:
    """The source handed to pyOpenVBA: CRLF, with the module's own header where it brings one."""
    header = _header_of(module.code)
    if header:
        named = _HEADER_NAME.search(header)
        if named and named.group(1) != module.name:
            raise ValueError(f"VBA module {module.name!r} carries the header of {named.group(1)!r}")
    if module.kind == "standard" or not header:
        # A standard module's header is only its name; pyOpenVBA writes it (as for a bare body).
        return _crlf(module.body)
    if not named:
        header = f'Attribute VB_Name = "{module.name}"\n' + header
    return _crlf(header + module.body)


def write_vba_project(xlsm_path: str | os.PathLike[str], modules: Iterable[VbaModule], *,
                      timestamp: str | None = TEMPLATE_TIMESTAMP) -> None:
    """Give the .xlsm at ``xlsm_path`` (as openpyxl writes it) a VBA project holding ``modules``.

    The project holds, in order, the document modules Excel makes (``ThisWorkbook``, then one per
    sheet, named by its code name or ``Sheet<n>``) and then ``modules`` in the order given. A
    ``document`` module fills the code of the document module of that name, which must exist.
    A project already in the file is replaced, so building again from the same inputs gives the
    same file. The workbook part is typed macro-enabled, docProps/core.xml's dates are set to
    ``timestamp`` (None leaves them) and the package is written canonically and atomically (see
    the module docstring). Nothing is written if anything fails.
    """
    from pyopenvba import ExcelFile, VBAModuleKind

    modules = list(modules)
    names = [m.name.casefold() for m in modules]
    if len(set(names)) != len(names):
        raise ValueError("Two VBA modules share a name")
    target = Path(xlsm_path)
    if target.suffix.lower() != ".xlsm":
        raise ValueError(f"{target.name}: a VBA project goes into an .xlsm file")
    parts = _without_vba_project(read_package(target))

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".vba-build-") as scratch:
        staged = Path(scratch) / "stage.xlsm"
        staged.write_bytes(package_bytes(parts))
        built = Path(scratch) / "built.xlsm"
        with ExcelFile(staged) as book:
            project = book.add_vba_project()
            documents = {m.name.casefold(): m.name for m in project.modules}
            for module in modules:
                if module.kind == "document":
                    if module.name.casefold() not in documents:
                        raise ValueError(f"No document module {module.name!r} in this workbook "
                                         f"(it has {sorted(documents.values())})")
                    book.set_module(documents[module.name.casefold()], _crlf(module.body))
                    continue
                if module.name.casefold() in documents:
                    raise ValueError(f"VBA module {module.name!r} clashes with a document module")
                kind = VBAModuleKind.standard if module.kind == "standard" else VBAModuleKind.other
                project.add_module(module.name, _module_source(module), kind=kind)
            book.save(built)
        result = read_package(built)

    result = _as_macro_enabled(result)
    if timestamp is not None and CORE_PART in result:
        result[CORE_PART] = pin_core_dates(result[CORE_PART], timestamp)
    write_package(target, result)


def vba_project_bytes(path: str | os.PathLike[str]) -> bytes:
    """The raw ``xl/vbaProject.bin`` of the workbook at ``path`` (KeyError if it has none)."""
    with zipfile.ZipFile(path) as archive:
        return archive.read(VBA_PART)


def read_vba_modules(path: str | os.PathLike[str]) -> dict[str, str]:
    """Module name -> source text of every module in the workbook's VBA project, via olevba.

    Line endings are '\\n' and the leading ``Attribute VB_...`` header lines are stripped, so the
    text compares equal to :attr:`VbaModule.body`. A workbook without a project gives ``{}``.
    """
    from oletools.olevba import VBA_Parser

    parser = VBA_Parser(str(path))
    try:
        if not parser.detect_vba_macros():
            return {}
        found: dict[str, str] = {}
        for _, _, filename, code in parser.extract_macros():
            if isinstance(code, bytes):
                code = code.decode("cp1252")
            found[os.path.splitext(filename)[0]] = strip_attribute_header(code)
        return found
    finally:
        parser.close()
