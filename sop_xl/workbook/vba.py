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
the modules. The zip around it is not, as openpyxl writes it; :func:`write_vba_project` writes the
package through :func:`sop_xl.workbook.package.write_package` (canonical entry order, dates and
compression) and pins the core ``created``/``modified`` dates to :data:`TEMPLATE_TIMESTAMP`.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sop_xl.workbook.package import (
    CONTENT_TYPES,
    CORE_PART,
    content_types,
    edit_content_types,
    package_bytes,
    pin_core_dates,
    read_package,
    relationships,
    write_package,
)

__all__ = [
    "TEMPLATE_TIMESTAMP",
    "VBA_SOURCE_DIR",
    "VbaModule",
    "load_source_modules",
    "read_vba_modules",
    "strip_attribute_header",
    "vba_project_bytes",
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
WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"

XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
VBA_CONTENT = "application/vnd.ms-office.vbaProject"
VBA_REL_TYPE = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"

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
# The VBA project's traces in the package (part, relationship, content type)
# ---------------------------------------------------------------------------------------------

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
    defaults, overrides = content_types(parts[CONTENT_TYPES])
    drop_override = [p for p, kind in overrides.items() if kind == VBA_CONTENT]
    drop_default = ["bin"] if defaults.get("bin") == VBA_CONTENT else []
    if drop_override or drop_default:
        parts[CONTENT_TYPES] = edit_content_types(parts[CONTENT_TYPES], drop_override=drop_override,
                                                   drop_default=drop_default)
    return parts


def _as_macro_enabled(parts: dict[str, bytes]) -> dict[str, bytes]:
    """``parts`` with the workbook part typed as a macro-enabled workbook.

    A fresh openpyxl Workbook saved as .xlsm keeps the .xlsx main content type; Excel refuses to
    open an .xlsm whose workbook part is typed as .xlsx.
    """
    _, overrides = content_types(parts[CONTENT_TYPES])
    if overrides.get("/xl/workbook.xml") != XLSM_MAIN:
        parts = dict(parts)
        parts[CONTENT_TYPES] = edit_content_types(parts[CONTENT_TYPES],
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
    result[VBA_PART] = writer_conformant(result[VBA_PART])
    if timestamp is not None and CORE_PART in result:
        result[CORE_PART] = pin_core_dates(result[CORE_PART], timestamp)
    write_package(target, result)


# [MS-OVBA] 2.3.4.1: a writer sets _VBA_PROJECT's Version to 0xFFFF and writes no PerformanceCache,
# so every Office version compiles the project from its source on first open.
VBA_PROJECT_STREAM = b"\xcc\x61\xff\xff\x00\x00\x00"  # Reserved1 0x61CC, Version, Reserved2, Reserved3


def writer_conformant(project_bin: bytes) -> bytes:
    """``vbaProject.bin`` as [MS-OVBA] 2.3.4.1 asks of a writer that is not Office: _VBA_PROJECT is
    version 0xFFFF without a performance cache, and no module stream keeps compiled p-code before its
    source (pyOpenVBA starts from an Excel-authored empty project, whose cache and Sheet1 p-code
    would otherwise stay: stale once modules are added)."""
    from pyopenvba.cfb import CFB
    from pyopenvba.vba import compress, parse_vba_project, serialize_dir_stream, write_back_modules

    cfb = CFB.from_bytes(project_bin)
    project = parse_vba_project(cfb)
    for module in project.modules:
        if module.text_offset:
            module.dirty = True  # rewritten as source only, its MODULEOFFSET set to 0
    write_back_modules(cfb, project)
    if project.dir_structure_dirty:
        cfb.write_stream_in_storage("VBA", "dir", compress(serialize_dir_stream(project)))
    cfb.write_stream_in_storage("VBA", "_VBA_PROJECT", VBA_PROJECT_STREAM)
    return cfb.to_bytes()


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


# ---------------------------------------------------------------------------------------------
# Sheets added to a macro workbook (the family review pages a run creates)
# ---------------------------------------------------------------------------------------------
# VB_Base of the document modules Excel makes for the workbook and for a worksheet.
_DOCUMENT_BASES = ("00020819-0000-0000-C000-000000000046", "00020820-0000-0000-C000-000000000046")


def give_code_names(wb) -> list[str]:
    """A free code name (``Sheet<n>``) for every sheet of the openpyxl workbook ``wb`` that has none:
    Excel, and the VBA writer, would name a new sheet by its place, which a kept sheet may hold, and
    two sheets must never share one. Returns the names given."""
    sheets = list(wb.worksheets)
    taken = {str(ws.sheet_properties.codeName).casefold() for ws in sheets if ws.sheet_properties.codeName}
    if not taken:
        return []  # none has one: the VBA writer names them all by place, as Excel does
    given, n = [], 1
    for ws in sheets:
        if ws.sheet_properties.codeName:
            continue
        while f"sheet{n}" in taken:
            n += 1
        ws.sheet_properties.codeName = f"Sheet{n}"
        taken.add(f"sheet{n}")
        given.append(f"Sheet{n}")
    return given


def project_modules(path: str | os.PathLike[str]) -> list[VbaModule] | None:
    """The workbook's VBA modules with their kinds, as :func:`write_vba_project` takes them (empty
    document modules left out: the writer makes one per sheet). None when the project holds what a
    rebuild from source would lose (user forms), or cannot be read."""
    from pyopenvba import ExcelFile, VBAModuleKind
    from pyopenvba.vba import split_attribute_header

    try:
        with ExcelFile(path) as book:
            if not book.has_vba_project() or book.forms():
                return None
            modules = []
            for m in book.vba_project().modules:
                header, body = split_attribute_header(m.source)
                if m.kind == VBAModuleKind.standard:
                    modules.append(VbaModule(m.name, "standard", body))
                elif any(base in header for base in _DOCUMENT_BASES):
                    if body.strip():
                        modules.append(VbaModule(m.name, "document", body))
                else:
                    modules.append(VbaModule(m.name, "class", m.source))
            return modules
    except Exception:  # noqa: BLE001 - a project we cannot read is left exactly as it is
        return None


def rebuild_for_new_sheets(xlsm_path: str | os.PathLike[str], modules: list[VbaModule]) -> None:
    """Write the project again with ``modules`` (read by :func:`project_modules` before the sheets were
    added): the writer gives every sheet, the new ones too, its document module, so Excel finds a module
    for each code name."""
    write_vba_project(xlsm_path, modules, timestamp=None)
