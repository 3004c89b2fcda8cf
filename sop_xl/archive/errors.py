"""One-line messages for everything that can go wrong between sop-xl and the archive database."""
from __future__ import annotations

from sqlalchemy.engine import make_url


class ArchiveError(RuntimeError):
    """A failure the user can act on; the message is one line and names the database (no password)."""


def safe_url(url) -> str:
    """The URL as the user may see it: the password masked."""
    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as typed (it holds no parsed password)
        return str(url)


def describe(exc: BaseException, url) -> ArchiveError:
    """Turn a driver or OS error into an ArchiveError whose message says what happened and what to do."""
    where = safe_url(url)
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split()) or type(orig).__name__
    low = text.lower()
    if "password authentication failed" in low or "authentication failed" in low or "access denied" in low:
        hint = "the database refused the user name or password: check --db / ArchiveUrl"
    elif ("connection refused" in low or "could not translate host name" in low or "timeout expired" in low
          or "no route to host" in low or "name or service not known" in low or "could not connect" in low):
        hint = "the database server cannot be reached: is it running, and are host and port right?"
    elif "unable to open database file" in low:
        hint = "the SQLite file cannot be opened: does its folder exist and may you write there?"
    elif "disk is full" in low or "no space left" in low or "disk full" in low:
        hint = "the disk holding the archive is full: free space and archive again"
    elif "database is locked" in low:
        hint = "another archive held the database too long: try again"
    else:
        hint = None
    first = text[:240]
    return ArchiveError(f"archive {where}: {hint + ' (' + first + ')' if hint else first}")
