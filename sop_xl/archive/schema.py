"""The archive's tables, their version, and the migrations from one version to the next.

The database records the version it was built with in ``schema_version`` (one row per version
applied). Opening an older archive runs the missing migrations inside the archiving transaction;
an archive from a newer sop-xl is refused (its tables may hold what this code would misread or drop).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sop_xl.archive.errors import ArchiveError

SCHEMA_VERSION = 2

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per archived cycle; the cycle id is the plan's first month (Settings PlanStart).
cycles = sa.Table(
    "cycles", metadata,
    sa.Column("cycle", sa.Date, primary_key=True),
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("archived_by", sa.String(128), nullable=False),
    sa.Column("workbook", sa.String(260), nullable=False),
    sa.Column("inputs_fingerprint", sa.String(64), nullable=False),
    sa.Column("horizon", sa.Integer, nullable=False),
    sa.Column("sop_xl_version", sa.String(32), nullable=False),
)


def _cycle_fk() -> sa.Column:
    # ON DELETE CASCADE is only a convenience for people deleting by hand; re-archiving deletes
    # each table's rows explicitly (SQLite enforces foreign keys only when asked to).
    return sa.Column("cycle", sa.Date, sa.ForeignKey("cycles.cycle", ondelete="CASCADE"), nullable=False)


def _lag() -> sa.Column:
    # Months from the cycle's last actual month to the period: 1 = the first plan month. Derivable,
    # but stored so accuracy by lag reads only the rows it needs.
    return sa.Column("lag", sa.SmallInteger, nullable=False)


# Item attributes as they were in the cycle (family and owner move over time).
cycle_items = sa.Table(
    "cycle_items", metadata, _cycle_fk(),
    sa.Column("item", sa.String(100), nullable=False),
    sa.Column("family", sa.String(100)),
    sa.Column("item_type", sa.String(8)),
    sa.Column("owner", sa.String(128)),
    sa.Column("model", sa.String(40)),  # the statistical model the forecast step chose
    sa.PrimaryKeyConstraint("cycle", "item"),
)

cycle_demand = sa.Table(
    "cycle_demand", metadata, _cycle_fk(),
    sa.Column("item", sa.String(100), nullable=False),
    sa.Column("period", sa.Date, nullable=False), _lag(),
    sa.Column("stat_forecast", sa.Float),
    sa.Column("sales_override", sa.Float),
    sa.Column("event_uplift", sa.Float),
    sa.Column("consensus", sa.Float),
    sa.Column("reason", sa.String(200)),  # why the override or uplift (version 2)
    sa.PrimaryKeyConstraint("cycle", "item", "period"),
    sa.Index("ix_cycle_demand_lag", "lag"),
)

cycle_supply = sa.Table(
    "cycle_supply", metadata, _cycle_fk(),
    sa.Column("item", sa.String(100), nullable=False),
    sa.Column("period", sa.Date, nullable=False), _lag(),
    *(sa.Column(c, sa.Float) for c in ("demand", "production", "inventory", "backlog", "lost", "served")),
    sa.PrimaryKeyConstraint("cycle", "item", "period"),
)

cycle_financials = sa.Table(
    "cycle_financials", metadata, _cycle_fk(),
    sa.Column("family", sa.String(100), nullable=False),
    sa.Column("period", sa.Date, nullable=False), _lag(),
    *(sa.Column(c, sa.Float) for c in ("units", "revenue", "cogs", "margin", "budget_revenue", "budget_margin",
                                       "inventory_value")),
    sa.PrimaryKeyConstraint("cycle", "family", "period"),
)

# Changes collected from planners' copies (sop-xl collect), as the master's Audit table has them
# (version 2). Not tied to an archived cycle: a cycle is collected before it is archived.
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("cycle", sa.Date, nullable=False),  # the master's PlanStart
    sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("workbook", sa.String(260), nullable=False),
    sa.Column("planner", sa.String(128), nullable=False),
    sa.Column("table_name", sa.String(40), nullable=False),
    sa.Column("row_key", sa.String(200), nullable=False),
    sa.Column("column_name", sa.String(40), nullable=False),
    sa.Column("old_value", sa.String(200)),
    sa.Column("new_value", sa.String(200)),
    sa.Column("reason", sa.String(200)),
    sa.Column("copy", sa.String(260)),
    sa.Index("ix_audit_cycle", "cycle"),
)

# What a cycle holds, by name: the table, its key columns and its value columns. The write and read
# paths both go through this, so a new measure is one column here plus a migration.
PARTS = {
    "items": (cycle_items, ("item",), ("family", "item_type", "owner", "model")),
    "demand": (cycle_demand, ("item", "period", "lag"),
               ("stat_forecast", "sales_override", "event_uplift", "consensus", "reason")),
    "supply": (cycle_supply, ("item", "period", "lag"),
               ("demand", "production", "inventory", "backlog", "lost", "served")),
    "financials": (cycle_financials, ("family", "period", "lag"),
                   ("units", "revenue", "cogs", "margin", "budget_revenue", "budget_margin", "inventory_value")),
}

# MIGRATIONS[n] upgrades a version-n archive to version n+1, inside the caller's transaction, e.g.
#   2: lambda conn: conn.execute(sa.text("ALTER TABLE cycle_demand ADD COLUMN reason VARCHAR(200)"))
# (with SCHEMA_VERSION raised to 2 and the column added to the table above).
def _to_2(conn: Connection) -> None:
    """Version 2: the reason of an override or uplift, and the audit of collected changes."""
    prep = conn.dialect.identifier_preparer
    conn.execute(sa.text(f"ALTER TABLE {prep.format_table(cycle_demand)} ADD COLUMN reason VARCHAR(200)"))
    audit.create(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _to_2}


def current_version(conn: Connection) -> int | None:
    """The archive's schema version; None for a database that holds no archive yet."""
    if not sa.inspect(conn).has_table(schema_version.name):
        return None
    return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()


def check_version(found: int | None, where: str) -> None:
    if found is not None and found > SCHEMA_VERSION:
        raise ArchiveError(f"archive {where}: its schema is version {found}, newer than this sop-xl knows "
                           f"({SCHEMA_VERSION}); upgrade sop-xl to use it. Nothing was written")


def ensure_schema(conn: Connection, where: str) -> None:
    """Create the tables, or bring an older archive up to SCHEMA_VERSION, in the caller's transaction."""
    found = current_version(conn)
    check_version(found, where)
    now = datetime.now(timezone.utc)
    if found is None:
        ours = [t for t in metadata.sorted_tables if sa.inspect(conn).has_table(t.name)]
        if ours:
            raise ArchiveError(f"archive {where}: the database holds a table named {ours[0].name!r} but no "
                               f"schema_version: it is not an sop-xl archive; point --db at another database")
        metadata.create_all(conn)
        conn.execute(schema_version.insert(), [{"version": SCHEMA_VERSION, "applied_at": now}])
        return
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
        conn.execute(schema_version.insert(), [{"version": version + 1, "applied_at": now}])
