"""Writing and reading the archive: one transaction per cycle, bulk inserts, long frames out."""
from __future__ import annotations

import io
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from sop_xl.archive import schema
from sop_xl.archive.errors import ArchiveError, describe, safe_url

# Concurrent archives on PostgreSQL take this transaction-scoped advisory lock first, so two first
# archives cannot both create the tables, and two archives of one cycle replace each other whole.
_PG_LOCK_KEY = zlib.crc32(b"sop-xl archive")
SQLITE_BUSY_SECONDS = 60  # how long an archive waits for another one to commit on SQLite


@dataclass
class Cycle:
    """One closing cycle as it is archived. ``parts`` maps schema.PARTS names to frames holding that
    part's key and value columns (``period`` as dates; ``lag`` is computed on writing)."""
    cycle: date
    archived_by: str
    archived_at: datetime
    workbook: str
    inputs_fingerprint: str
    horizon: int
    sop_xl_version: str
    parts: dict[str, pd.DataFrame] = field(default_factory=dict)


def default_url(workbook) -> str:
    """The embedded archive beside a workbook: ``NAME.archive.sqlite`` (no server to install)."""
    path = Path(workbook).resolve()
    return f"sqlite:///{path.with_name(path.stem + '.archive.sqlite')}"


def open_archive(url: str | None = None, workbook=None) -> "Archive":
    if not url:
        if workbook is None:
            raise ArchiveError("no archive database: give --db URL (or a workbook for the default SQLite file)")
        url = default_url(workbook)
    return Archive(url)


def lags(cycle: date, period: pd.Series) -> np.ndarray:
    """Months from the cycle's last actual month to ``period``: 1 for the plan's first month."""
    c = pd.Timestamp(cycle)
    p = pd.to_datetime(period)
    return ((p.dt.year - c.year) * 12 + (p.dt.month - c.month) + 1).to_numpy()


def _date_column(values: pd.Series, as_text: bool) -> list:
    """Dates for the driver: ISO text (SQLite's DATE storage, as SQLAlchemy writes it) or ``date``s.
    Plans repeat a few months many times: convert the distinct ones only."""
    codes, uniques = pd.factorize(pd.to_datetime(values))
    conv = np.array([u.date().isoformat() if as_text else u.date() for u in uniques], dtype=object)
    return conv[codes].tolist()


def _columns(frame: pd.DataFrame, table: sa.Table, names: list[str], cycle: date, dates_as_text: bool) -> list[list]:
    """Plain Python column lists for the driver: NaN as NULL, dates converted, text as ``str``."""
    out = []
    for name in names:
        kind = table.c[name].type
        if name == "cycle":
            value = cycle.isoformat() if dates_as_text else cycle
            out.append([value] * len(frame))
            continue
        values = frame[name] if name in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        if isinstance(kind, sa.Date):
            out.append(_date_column(values, dates_as_text))
        elif isinstance(kind, sa.Integer):
            out.append(values.astype(int).tolist())
        elif isinstance(kind, sa.Float):
            arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            obj = arr.astype(object)
            obj[np.isnan(arr)] = None
            out.append(obj.tolist())
        else:
            obj = values.astype(object).to_numpy()
            obj[pd.isna(obj)] = None
            size = getattr(kind, "length", None) or None  # a long Reason must not fail the archive on PostgreSQL
            out.append([None if v is None else str(v)[:size] for v in obj])
    return out


def bulk_insert(conn: Connection, table: sa.Table, frame: pd.DataFrame, cycle: date) -> int:
    """Insert a cycle's part in bulk: PostgreSQL (psycopg) by COPY, SQLite by one executemany of
    plain tuples, any other database by SQLAlchemy's executemany. Returns the rows written."""
    names = [c.name for c in table.columns]
    dialect, driver = conn.dialect.name, conn.dialect.driver
    rows = list(zip(*_columns(frame, table, names, cycle, dates_as_text=(dialect == "sqlite"))))
    if not rows:
        return 0
    if dialect == "postgresql" and driver == "psycopg":
        prep = conn.dialect.identifier_preparer
        cols = ", ".join(prep.quote(n) for n in names)
        with conn.connection.driver_connection.cursor() as cur:  # the transaction's own connection
            with cur.copy(f"COPY {prep.format_table(table)} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    elif dialect == "sqlite":
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) "
                             f"VALUES ({', '.join('?' * len(names))})", rows)
    else:
        conn.execute(table.insert(), [dict(zip(names, row)) for row in rows])
    return len(rows)


class Archive:
    """A plan archive at a SQLAlchemy URL. Every failure surfaces as an ArchiveError (one line)."""

    def __init__(self, url: str, engine: Engine | None = None):
        self.url = str(url)
        self.where = safe_url(self.url)
        try:
            self.engine = engine or _make_engine(self.url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ArchiveError(f"archive {self.where}: not a usable database URL ({exc})") from exc
        if self.engine.dialect.name == "sqlite":
            _serialise_sqlite_writes(self.engine)

    @property
    def _driver_error(self) -> type[BaseException]:
        return getattr(getattr(self.engine.dialect, "loaded_dbapi", None), "Error", SQLAlchemyError)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()

    # -------------------------------------------------------------------------------- writing
    def write(self, cycle: Cycle) -> dict[str, int]:
        """Store ``cycle``, replacing an earlier archive of the same cycle, in one transaction: a
        failure anywhere leaves the archive as it was. Returns rows written per part."""
        written = {}
        try:
            with self._writing() as conn:  # one transaction: the old rows go and the new come, or nothing changes
                for table, _, _ in reversed(list(schema.PARTS.values())):
                    conn.execute(table.delete().where(table.c.cycle == cycle.cycle))
                conn.execute(schema.cycles.delete().where(schema.cycles.c.cycle == cycle.cycle))
                conn.execute(schema.cycles.insert(), [{
                    "cycle": cycle.cycle, "archived_at": cycle.archived_at, "archived_by": cycle.archived_by,
                    "workbook": cycle.workbook, "inputs_fingerprint": cycle.inputs_fingerprint,
                    "horizon": cycle.horizon, "sop_xl_version": cycle.sop_xl_version}])
                for part, (table, keys, _) in schema.PARTS.items():
                    frame = cycle.parts.get(part)
                    if frame is None or frame.empty:
                        written[part] = 0
                        continue
                    if "period" in keys:
                        frame = frame.assign(lag=lags(cycle.cycle, frame["period"]))
                    written[part] = bulk_insert(conn, table, frame, cycle.cycle)
        except ArchiveError:
            raise
        except (SQLAlchemyError, OSError, self._driver_error) as exc:  # COPY raises the driver's own errors
            raise describe(exc, self.url) from exc
        return written

    @contextmanager
    def _writing(self):
        """A connection in one write transaction, the schema created or migrated inside it."""
        with self.engine.connect() as conn:
            conn.execution_options(sop_xl_write=True)
            with conn.begin():
                if self.engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                schema.ensure_schema(conn, self.where)
                yield conn

    def write_audit(self, rows: pd.DataFrame, cycle: date, workbook: str, collected_at: datetime) -> int:
        """Append collected changes (the Audit table's fields) in one transaction; returns the rows written."""
        if rows.empty:
            return 0
        def text(v):
            return None if v is None or (isinstance(v, float) and v != v) or v == "" else str(v)[:200]
        records = [{"cycle": cycle, "collected_at": collected_at, "workbook": workbook[:260],
                    "planner": str(r["planner"])[:128], "table_name": str(r["table"])[:40], "row_key": str(r["key"])[:200],
                    "column_name": str(r["column"])[:40], "old_value": text(r["old"]), "new_value": text(r["new"]),
                    "reason": text(r["reason"]), "copy": text(r["copy"])} for r in rows.to_dict("records")]
        try:
            with self._writing() as conn:
                conn.execute(schema.audit.insert(), records)
        except ArchiveError:
            raise
        except (SQLAlchemyError, OSError, self._driver_error) as exc:
            raise describe(exc, self.url) from exc
        return len(records)

    def audit(self) -> pd.DataFrame:
        """Every collected change, oldest first (empty before the first collect)."""
        return self._whole_table(schema.audit, schema.audit.c.id, since_version=2)

    # -------------------------------------------------------------------------------- reading
    def _reading(self):
        if self.is_sqlite:
            db = self.engine.url.database
            if db and db != ":memory:" and not Path(db).exists():
                raise ArchiveError(f"archive {self.where}: no archive there yet; run sop-xl archive first")
        return self.engine.connect()

    def _checked(self, conn: Connection) -> int | None:
        """The version of the archive the database holds (None: none yet), refusing a newer schema."""
        found = schema.current_version(conn)
        schema.check_version(found, self.where)
        return found

    def cycles(self) -> pd.DataFrame:
        """One row per archived cycle: cycle, archived_at, archived_by, workbook, fingerprint, horizon."""
        return self._whole_table(schema.cycles, schema.cycles.c.cycle)

    def _whole_table(self, table, order, since_version: int = 1) -> pd.DataFrame:
        """Every row of ``table`` in ``order``; empty when the archive is older than the table."""
        cols = [c.name for c in table.columns]
        try:
            with self._reading() as conn:
                found = self._checked(conn)
                if not found or found < since_version:
                    return pd.DataFrame(columns=cols)
                rows = conn.execute(sa.select(table).order_by(order)).all()
        except ArchiveError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise describe(exc, self.url) from exc
        frame = pd.DataFrame.from_records(rows, columns=cols)
        frame["cycle"] = pd.to_datetime(frame["cycle"])
        return frame

    def read(self, part: str, cycles: Iterable | None = None, lag: Iterable[int] | None = None,
             columns: Iterable[str] | None = None) -> pd.DataFrame:
        """One part of the archived cycles: one row per cycle, key and period, with its value columns
        (``columns`` to read fewer). ``cycles`` (dates) and ``lag`` (ints) narrow the rows."""
        table, keys, values = schema.PARTS[part]
        values = tuple(columns) if columns is not None else values
        names = ["cycle", *keys, *values]
        try:
            with self._reading() as conn:
                found = self._checked(conn)
                if not found:
                    return pd.DataFrame(columns=names)
                # An older archive (migrated on its next write) lacks the newer columns: read them as blank.
                have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)} if found < schema.SCHEMA_VERSION \
                    else set(table.c.keys())
                # Dates come back as the driver gives them (ISO text on SQLite) and are converted per
                # distinct value below: SQLAlchemy's per-row date parsing would dominate reading many cycles.
                query = sa.select(*(sa.type_coerce(table.c[n], sa.String).label(n) if isinstance(table.c[n].type, sa.Date)
                                    else table.c[n] if n in have else sa.null().label(n) for n in names))
                if cycles is not None:
                    query = query.where(table.c.cycle.in_([pd.Timestamp(c).date() for c in cycles]))
                if lag is not None and "lag" in table.c:
                    query = query.where(table.c.lag.in_([int(x) for x in lag]))
                # The driver's plain tuples: wrapping 100,000s of rows in SQLAlchemy Rows costs seconds.
                rows = conn.execute(query).cursor.fetchall()
        except ArchiveError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise describe(exc, self.url) from exc
        frame = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame({n: [] for n in names})
        for n in values:
            if isinstance(table.c[n].type, sa.Float):
                frame[n] = pd.to_numeric(frame[n], errors="coerce").astype(float)
        for n in names:
            if isinstance(table.c[n].type, sa.Date):
                codes, uniques = pd.factorize(frame[n])  # dates are NOT NULL: no code is -1
                frame[n] = pd.to_datetime(pd.Index(uniques).astype(str))[codes] if len(frame) else \
                    pd.to_datetime(frame[n])
            elif isinstance(table.c[n].type, sa.Integer):
                frame[n] = frame[n].astype("int64") if len(frame) else frame[n]
        return frame

    def read_forecasts(self, lags: Iterable[int], until=None) -> pd.DataFrame:
        """What accuracy by lag needs, one row per cycle, item and period at ``lags``: cycle, item, period,
        lag, stat_forecast, consensus, and the item's family and owner in that cycle. ``until``: only
        periods up to this month (later ones have no actuals yet).

        The accuracy path reads 100,000s of rows, and the driver makes a Python object of every value:
        so the period is not read but derived from cycle and lag, the cycle comes as text and is parsed
        once per distinct value, and family and owner are attached by integer codes, not a merge."""
        d, i = schema.cycle_demand, schema.cycle_items
        as_text = lambda c: sa.type_coerce(c, sa.String)  # noqa: E731 - dates as the driver stores them
        demand_q = sa.select(as_text(d.c.cycle), d.c.item, d.c.lag, d.c.stat_forecast, d.c.consensus).where(
            d.c.lag.in_([int(x) for x in lags]))
        if until is not None:
            demand_q = demand_q.where(d.c.period <= pd.Timestamp(until).date())
        items_q = sa.select(as_text(i.c.cycle), i.c.item, i.c.family, i.c.owner)
        try:
            with self._reading() as conn:
                if not self._checked(conn):
                    demand_cols, item_cols = _columns_of([], 5), _columns_of([], 4)
                else:
                    demand_cols = _fetch_columns(conn, demand_q, 5, {2: "int64", 3: "float64", 4: "float64"})
                    item_cols = _fetch_columns(conn, items_q, 4)
        except ArchiveError:
            raise
        except (SQLAlchemyError, OSError, self._driver_error) as exc:
            raise describe(exc, self.url) from exc
        names = ["cycle", "item", "period", "lag", "stat_forecast", "consensus", "family", "owner"]
        if not len(demand_cols[0]):
            return pd.DataFrame({n: [] for n in names})
        cycle, item, lag, stat, cons = demand_cols
        i_cycle, i_item, family, owner = item_cols
        cycle_codes, cycles = pd.factorize(np.concatenate([cycle, i_cycle]))
        item_codes, items = pd.factorize(np.concatenate([item, i_item]))
        n = len(cycle)
        key = cycle_codes * len(items) + item_codes
        lookup = np.full(len(cycles) * len(items), len(i_item))  # the extra last slot: no item row
        lookup[key[n:]] = np.arange(len(i_item))
        at = lookup[key[:n]]
        starts = pd.to_datetime(pd.Index(cycles).astype(str))
        epoch_month = ((starts.year - 1970) * 12 + starts.month - 1).to_numpy()
        lag = pd.to_numeric(lag).astype(np.int64)
        period = (epoch_month[cycle_codes[:n]] + lag - 1).astype("datetime64[M]").astype("datetime64[ns]")

        def attribute(values: np.ndarray) -> pd.Categorical:
            """An item attribute per row, by code: a blank (no item row, NULL or "") is missing."""
            codes, labels = pd.factorize(values)  # NULL -> -1
            keep = np.array([str(v).strip() != "" for v in labels], dtype=bool)
            renumbered = np.where(keep, np.cumsum(keep) - 1, -1)
            codes = np.where(codes >= 0, renumbered[np.maximum(codes, 0)], -1) if len(labels) else codes
            return pd.Categorical.from_codes(np.append(codes, -1)[at], categories=pd.Index(labels[keep], dtype=object),
                                             validate=False)

        # Codes, not strings, for the repeated text columns: the frame is built without object blocks.
        return pd.DataFrame({
            "cycle": starts[cycle_codes[:n]],
            "item": pd.Categorical.from_codes(item_codes[:n], categories=pd.Index(items, dtype=object), validate=False),
            "period": period, "lag": lag,
            "stat_forecast": pd.to_numeric(stat, errors="coerce").astype(float),
            "consensus": pd.to_numeric(cons, errors="coerce").astype(float),
            "family": attribute(family), "owner": attribute(owner)})

    def read_long(self, part: str, **kw) -> pd.DataFrame:
        """``read`` melted to one row per measure: cycle, key…, period, lag, measure, value."""
        wide = self.read(part, **kw)
        keys = [c for c in ("cycle", *schema.PARTS[part][1]) if c in wide.columns]
        return wide.melt(id_vars=keys, var_name="measure", value_name="value")


def _fetch_columns(conn: Connection, query, width: int, numbers: dict[int, str] | None = None) -> list[np.ndarray]:
    """A query's result as one array per column. PostgreSQL (psycopg): COPY … TO STDOUT as CSV parsed by
    pandas' C reader, with no Python object per value on the way; elsewhere the driver's tuples."""
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        buffer = io.BytesIO()
        with conn.connection.driver_connection.cursor() as cur:  # the reading transaction's connection
            with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    buffer.write(block)
        buffer.seek(0)
        if not buffer.getbuffer().nbytes:
            return _columns_of([], width)
        # Numbers parsed by the C reader (``numbers``: column -> dtype), text stays text ("NA" is an
        # item code, not a missing value); an empty field is NULL.
        dtypes = {j: (numbers or {}).get(j, object) for j in range(width)}
        frame = pd.read_csv(buffer, header=None, dtype=dtypes, keep_default_na=False, na_values=[""])
        return [frame[j].to_numpy() for j in range(width)]
    return _columns_of(conn.execute(query).cursor.fetchall(), width)


def _columns_of(rows: list[tuple], width: int) -> list[np.ndarray]:
    """The driver's row tuples as one object array per column (one pass each, no per-row frame)."""
    if not rows:
        return [np.array([], dtype=object) for _ in range(width)]
    return [np.array([r[j] for r in rows], dtype=object) for j in range(width)]


def _make_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_SECONDS})
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2; sop-xl ships psycopg 3
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, connect_args={"connect_timeout": 10})
    return sa.create_engine(parsed)


def _serialise_sqlite_writes(engine: Engine) -> None:
    """SQLite: take the write lock when an archive's transaction begins (BEGIN IMMEDIATE), so a
    second archive waits for the first to commit instead of failing half-way, and the tables'
    creation is part of the transaction (SQLAlchemy's documented recipe for pysqlite)."""

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        write = conn.get_execution_options().get("sop_xl_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
