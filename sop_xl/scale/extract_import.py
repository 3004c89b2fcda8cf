"""An ERP extract (CSV, Parquet, or a SQL query) into one input table of a workbook.

The extract goes through the workbook's own checks, twice:

1. its rows, as :func:`sop_xl.plan.validation.parse_table` reads a sheet table (types, required
   cells, ranges, duplicate keys); each problem names the source file (or query) and its line;
2. the workbook with the table replaced, in memory, as every run loads it (references between
   tables, history before the plan start, ...); rows of the imported table are again named by
   their source line, rows of other tables by their sheet row.

Only then is the table written, through the one save path (atomic, with a backup). With any
problem nothing is written; a dry run reports what would change and writes nothing either.
CSV is read with the csv module so every record keeps its exact line number; Parquet with pyarrow.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from sop_xl import contract as k
from sop_xl.plan.book import RawTable, TableMissing
from sop_xl.plan.validation import ROW, Problem, parse_table
from sop_xl.scale import ScaleError
from sop_xl.workbook.actuals_file import delimited_reader

EXAMPLES = 5  # changed keys shown per kind in a dry run


@dataclass
class Extract:
    """Rows of a source, one position per line (blank rows pad lines that hold no record, so that a
    row's position is its line number), with what to call a position in messages."""
    label: str            # "sales.csv", "query on sqlite:///erp.db"
    unit: str             # "line" or "row"
    headers: list[str]
    rows: list[list[Any]]
    first: int            # line (or row) number of rows[0]


@dataclass
class ImportReport:
    table: k.Table
    source: str
    before: int
    after: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    written: bool = False

    def lines(self) -> list[str]:
        verb = "replaced" if self.written else "would replace"
        out = [f"{self.source} -> {self.table.sheet} ({self.table.name}): {verb} {self.before} row(s) by {self.after}"]
        if self.table.keys:
            for what, keys in (("added", self.added), ("removed", self.removed), ("changed", self.changed)):
                more = f", … {len(keys) - EXAMPLES} more" if len(keys) > EXAMPLES else ""
                shown = f": {', '.join(keys[:EXAMPLES])}{more}" if keys else ""
                out.append(f"  {len(keys)} {what}{shown}")
        if self.kept:
            out.append(f"  kept from the workbook for existing rows (not in the extract): {', '.join(self.kept)}")
        if self.unmapped:
            out.append(f"  source columns not used: {', '.join(self.unmapped)}")
        return out


class ImportRefused(ScaleError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:25] + ([f"... and {len(problems) - 25} more"] if len(problems) > 25 else [])
        super().__init__(f"{len(problems)} problem(s) in the extract; nothing was written:\n"
                         + "\n".join(f"  - {p}" for p in shown))


# ------------------------------------------------------------------------------------------ the source
def input_table(name: str) -> k.Table:
    """An input table by sheet or table name (Actuals, tblActuals), case-insensitive."""
    for table in k.INPUT_TABLES:
        if name.lower() in (table.sheet.lower(), table.name.lower()):
            return table
    raise ScaleError(f"no input table '{name}'; choose one of: {', '.join(t.sheet for t in k.INPUT_TABLES)}")


def read_mapping(path) -> tuple[dict[str, str], str | None]:
    """``[columns]`` workbook header = source column, and an optional ``[source] query``."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScaleError(f"{path}: not valid TOML ({exc})") from None
    columns = doc.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ScaleError(f"{path}: [columns] must map workbook headers to source column names (text)")
    query = doc.get("source", {}).get("query")
    return dict(columns), query


def read_extract(source: str, query: str | None = None) -> Extract:
    if "://" in source:
        if not query:
            raise ScaleError(f"{source}: a database needs a query (--query, or [source] query in the mapping)")
        return _read_query(source, query)
    path = Path(source)
    if not path.is_file():
        raise ScaleError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        rows = [list(r.values()) for r in table.to_pylist()]
        return Extract(path.name, "row", table.column_names, rows, first=1)
    raise ScaleError(f"{path}: expected a .csv or .parquet file, or a database URL")


def _read_csv(path: Path) -> Extract:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = delimited_reader(fh)
        headers = next(reader, None)
        if not headers:
            raise ScaleError(f"{path.name}: empty file")
        rows: list[list[Any]] = []
        start = reader.line_num + 1  # the line the next record starts on
        for record in reader:
            rows += [[] for _ in range(start - 2 - len(rows))]  # blank lines keep their numbers
            rows.append([None if v == "" else v for v in record])
            start = reader.line_num + 1
    return Extract(path.name, "line", headers, rows, first=2)


def _read_query(url: str, query: str) -> Extract:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ScaleError(f"cannot use the database URL {url}: {exc}") from None
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(query))
            headers = list(result.keys())
            rows = [[float(v) if isinstance(v, Decimal) else v for v in row] for row in result]
    except sa.exc.SQLAlchemyError as exc:
        raise ScaleError(f"the query on {url} failed: {str(exc.orig if hasattr(exc, 'orig') else exc)[:200]}") from None
    finally:
        engine.dispose()
    return Extract(f"query on {url}", "row", headers, rows, first=1)


def _norm(text) -> str:
    return re.sub(r"[\s_\-]+", "", str(text or "")).lower()


def as_raw_table(extract: Extract, table: k.Table, mapping: dict[str, str]) -> tuple[RawTable, dict[str, str], list[str]]:
    """The extract laid out as the workbook table: contract headers, one row per source position.
    Returns the raw table, the source column of each header, and the source columns left unused."""
    unknown = [h for h in mapping if _norm(h) not in {_norm(c.header) for c in table.columns}]
    if unknown:
        raise ScaleError(f"the mapping names column(s) {', '.join(unknown)} that {table.sheet} does not have "
                         f"({', '.join(table.headers)})")
    by_norm = {_norm(h): j for j, h in enumerate(extract.headers)}
    wanted = {_norm(h): src for h, src in mapping.items()}
    picks, source_of, missing = [], {}, []
    for col in table.columns:
        src = wanted.get(_norm(col.header), col.header)
        j = by_norm.get(_norm(src))
        if j is None and (col.header in mapping or col.required) and col.editable and not col.formula:
            missing.append(f"{col.header} (looked for source column '{src}')")
        picks.append(j)
        if j is not None:
            source_of[col.header] = str(extract.headers[j])
    if missing:
        raise ScaleError(f"{extract.label}: no source column for {', '.join(missing)}; the source has "
                         f"{', '.join(map(str, extract.headers))}; map them in the [columns] of a mapping file")
    rows = [[row[j] if j is not None and j < len(row) else None for j in picks] for row in extract.rows]
    used = {j for j in picks if j is not None}
    unused = [str(h) for j, h in enumerate(extract.headers) if j not in used]
    return RawTable(extract.label, table.name, table.headers, rows, extract.first, 1), source_of, unused


# ------------------------------------------------------------------------------------------ checks
def _source_problem(p: Problem, extract: Extract, source_of: dict[str, str]) -> str:
    where = f"{extract.label}, {extract.unit} {p.row}" if p.row is not None else extract.label
    if p.column:
        src = source_of.get(p.column)
        where += f", column {p.column}" + (f" (source '{src}')" if src and src != p.column else "")
    return f"{where}: {p.message}" + (f". {p.fix}" if p.fix else "")


def _keys(frame: pd.DataFrame, table: k.Table) -> pd.Series:
    def show(v):
        return f"{v:%Y-%m}" if isinstance(v, pd.Timestamp) else str(v)
    return frame[list(table.keys)].apply(lambda r: "/".join(show(v) for v in r), axis=1) if len(frame) else pd.Series(dtype=str)


def _differences(report: ImportReport, old: pd.DataFrame, new: pd.DataFrame, table: k.Table) -> None:
    if not table.keys:
        return
    fields = [c.field for c in table.columns if c.editable and not c.formula]
    a = old.assign(_key=_keys(old, table)).set_index("_key")[fields] if len(old) else pd.DataFrame(columns=fields)
    b = new.assign(_key=_keys(new, table)).set_index("_key")[fields] if len(new) else pd.DataFrame(columns=fields)
    report.added = [x for x in b.index if x not in a.index]
    report.removed = [x for x in a.index if x not in b.index]
    both = b.index.intersection(a.index)
    x, y = a.loc[both], b.loc[both]
    same = (x.eq(y) | (x.isna() & y.isna())).all(axis=1)  # blank on both sides is no change
    report.changed = [x for x in both if not same[x]]


def import_extract(workbook, table_name: str, source: str, mapping: dict[str, str] | None = None,
                   query: str | None = None, dry_run: bool = False,
                   progress: Callable[[str], None] | None = None) -> ImportReport:
    """Replace ``table_name``'s rows in ``workbook`` by the extract, or refuse (ImportRefused) with
    every problem; see the module docstring."""
    from sop_xl.plan.context import Context
    from sop_xl.plan.pipeline import rows_for
    from sop_xl.plan.validation import ValidationError
    from sop_xl.workbook import open_file

    table = input_table(table_name)
    extract = read_extract(source, query)
    raw_source, source_of, unused = as_raw_table(extract, table, mapping or {})
    new, problems = parse_table(raw_source, table)
    if problems:
        raise ImportRefused([_source_problem(p, extract, source_of) for p in problems])
    with open_file(workbook, progress=progress) as book:
        try:
            raw_old = book.read_table(table)
        except TableMissing as exc:
            raise ScaleError(f"{workbook}: {exc.what}") from None
        old, _ = parse_table(raw_old, table)  # the old rows' own problems are not this import's
        kept = _keep_columns(new, old, table, source_of)
        report = ImportReport(table, extract.label, len(old), len(new), unmapped=unused, kept=kept)
        _differences(report, old, new, table)
        # Replace the table in memory and load the workbook as a run would: the checks between tables.
        book.write_table(table, rows_for(table, new.drop(columns=[ROW]), raw_old.first_row, raw_old.first_col))
        line_of = new[ROW].tolist()
        try:
            Context(book).load(_neighbours(table))
        except ValidationError as exc:
            lines = []
            for p in exc.problems:
                i = (p.row - raw_old.first_row) if p.table == table.name and p.row is not None else -1
                if 0 <= i < len(line_of):
                    moved = Problem(extract.label, table.name, line_of[i], p.column, p.message, p.fix)
                    lines.append(_source_problem(moved, extract, source_of))
                else:
                    lines.append(f"after the import: {p}")
            raise ImportRefused(lines) from None
        if not dry_run:
            book.save()
            report.written = True
    return report


def _keep_columns(new: pd.DataFrame, old: pd.DataFrame, table: k.Table, source_of: dict[str, str]) -> list[str]:
    """Columns the extract does not carry keep the workbook's values for rows whose key is already
    there (an ERP item master does not wipe the planners' SafetyStock or Priority); new rows get the
    column's default, as a blank cell would. Changes ``new`` in place; returns the headers kept."""
    kept = [c for c in table.columns if c.header not in source_of and c.editable and not c.formula]
    if not (table.keys and kept and len(old) and len(new)):
        return []
    keys = list(table.keys)
    merged = new[keys].merge(old[keys + [c.field for c in kept]], on=keys, how="left", indicator=True)
    known = (merged["_merge"] == "both").to_numpy()
    for c in kept:
        values = new[c.field].astype(object)
        values[known] = merged.loc[known, c.field].to_numpy()
        new[c.field] = pd.to_numeric(values) if c.kind in (k.NUMBER, k.PERCENT, k.INTEGER) else values
    return [c.header for c in kept]


def _neighbours(table: k.Table) -> tuple[k.Table, ...]:
    """The table and the tables it refers to or that refer to it (Items for Actuals, and back)."""
    names = {table.name} | {r.table for r in table.refs}
    names |= {t.name for t in k.INPUT_TABLES if any(r.table == table.name for r in t.refs)}
    return tuple(t for t in k.INPUT_TABLES if t.name in names)
