"""The plan archive: every closing cycle's forecast, consensus, supply plan and financials in a
database (SQLAlchemy Core), so accuracy by lag and plan-vs-plan span months instead of one workbook.

Embedded default: a SQLite file beside the workbook (``NAME.archive.sqlite``); a team points every
workbook at one server database with any SQLAlchemy URL (``--db postgresql+psycopg://…``).
"""
from sop_xl.archive.errors import ArchiveError
from sop_xl.archive.store import Archive, default_url, open_archive

__all__ = ["Archive", "ArchiveError", "default_url", "open_archive"]
