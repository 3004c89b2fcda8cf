"""Adapters behind one small interface: a live xlwings Book, or a workbook file (openpyxl).

Macros and the CLI call the same pipeline functions with either; the engine never knows which.
"""
from sop_xl.plan.book import RawTable, TableMissing, WorkbookAdapter

__all__ = ["RawTable", "TableMissing", "WorkbookAdapter", "open_file", "for_caller"]


def open_file(path, **kw):
    from sop_xl.workbook.file_book import FileBook
    return FileBook(path, **kw)


def for_caller(book=None):
    """The adapter for the workbook that called a macro (xlwings ``Book.caller()``)."""
    from sop_xl.workbook.live_book import LiveBook
    return LiveBook(book)
