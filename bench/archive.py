"""The plan archive at scale: archiving one cycle, and accuracy by lag over many archived cycles.

    python bench/archive.py [--items 5000] [--months 18] [--cycles 24] [--pg URL | --no-pg]

On SQLite (a temporary file) and PostgreSQL (``--pg URL`` of an empty database, else a throwaway
cluster started like the tests do). Prints each time next to a baseline measured in the same run on
the same database: pandas ``to_sql`` of the same rows (writing), ``read_sql`` of the whole demand
table (reading), and the accuracy read path before the current one (best of two runs each). Targets
(issue 13): archiving 5,000 items x 18 months <= 5 s; accuracy by lag over 24 archived cycles of
5,000 items <= 2 s. The CPU seconds printed beside the accuracy time are what it takes on a free core.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sop_xl.archive import Archive  # noqa: E402
from sop_xl.archive.accuracy import archived_forecasts  # noqa: E402
from sop_xl.archive.store import Cycle  # noqa: E402
from sop_xl.engine.accuracy_by_lag import accuracy_by_lag  # noqa: E402

FAMILIES = 10


def make_cycle(start: pd.Timestamp, n_items: int, months: int, rng, parts=("items", "demand", "supply",
                                                                           "financials")) -> Cycle:
    items = [f"IT{i:05d}" for i in range(n_items)]
    periods = pd.date_range(start, periods=months, freq="MS")
    grid = pd.DataFrame({"item": np.repeat(items, months), "period": np.tile(periods, n_items)})
    n = len(grid)
    stat = rng.uniform(10, 500, n)
    override = np.where(rng.random(n) < 0.1, stat * rng.uniform(0.8, 1.3, n), np.nan)
    uplift = np.where(rng.random(n) < 0.05, 20.0, 0.0)
    frames = {
        "items": pd.DataFrame({"item": items, "family": [f"F{i % FAMILIES}" for i in range(n_items)],
                               "item_type": "FG", "owner": [f"planner{i % 3}" for i in range(n_items)],
                               "model": "AutoETS"}),
        "demand": grid.assign(stat_forecast=stat, sales_override=override, event_uplift=uplift,
                              consensus=np.where(np.isnan(override), stat, override) + uplift),
        "supply": grid.assign(demand=stat, production=stat * 0.98, inventory=stat * 0.3, backlog=0.0, lost=0.0,
                              served=stat * 0.99),
        "financials": pd.DataFrame({"family": np.repeat([f"F{i}" for i in range(FAMILIES)], months),
                                    "period": np.tile(periods, FAMILIES)}).assign(
            units=1.0, revenue=1e5, cogs=6e4, margin=4e4, budget_revenue=1e5, budget_margin=4e4, inventory_value=1e4),
    }
    return Cycle(cycle=start.date(), archived_by="bench", archived_at=datetime.now(timezone.utc),
                 workbook="bench.xlsm", inputs_fingerprint="0" * 64, horizon=months, sop_xl_version="bench",
                 parts={p: frames[p] for p in parts})


def bench_write(url: str, cycle: Cycle, baseline_url: str) -> tuple[float, float, int]:
    archive = Archive(url)
    archive.write(cycle)  # first archive creates the schema: not what is measured
    t0 = time.perf_counter()
    written = archive.write(cycle)  # a re-archive: delete the cycle's rows, insert them again
    t_archive = time.perf_counter() - t0
    archive.dispose()
    engine = sa.create_engine(baseline_url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for name, frame in cycle.parts.items():
            frame.assign(cycle=cycle.cycle).to_sql(f"baseline_{name}", conn, if_exists="replace", index=False,
                                                   chunksize=None)
    t_base = time.perf_counter() - t0
    engine.dispose()
    return t_archive, t_base, sum(written.values())


def bench_accuracy(url: str, n_items: int, months: int, cycles: int, rng) -> dict:
    first = pd.Timestamp("2024-01-01")
    archive = Archive(url)
    t0 = time.perf_counter()
    for c in range(cycles):
        archive.write(make_cycle(first + pd.DateOffset(months=c), n_items, months, rng, parts=("items", "demand")))
    t_fill = time.perf_counter() - t0
    hist = pd.date_range(first - pd.DateOffset(months=36), first + pd.DateOffset(months=cycles - 1), freq="MS")
    items = [f"IT{i:05d}" for i in range(n_items)]
    actuals = pd.DataFrame({"item": np.repeat(items, len(hist)), "period": np.tile(hist, n_items),
                            "qty": rng.uniform(0, 500, n_items * len(hist)).round()})
    until = hist[-1]  # as `sop-xl accuracy` does: periods after the last actual month cannot be scored

    def before_path():
        """The read path before this one (every column through Archive.read, family and owner by a
        pandas merge): measured here so the change is seen on the same machine at the same load."""
        demand = archive.read("demand", lag=(1, 3, 6), columns=("stat_forecast", "consensus"))
        return demand.merge(archive.read("items", columns=("family", "owner")), on=["cycle", "item"], how="left")

    before_path()  # untimed: both paths below find the database's cache warm
    runs = []
    for _ in range(2):  # best of two, alternating, so a burst of load on the shared machine counts less
        t0, c0 = time.perf_counter(), time.process_time()
        forecasts = archived_forecasts(archive, until=until)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = accuracy_by_lag(forecasts, actuals)
        t_engine = time.perf_counter() - t0
        # CPU seconds of this process for read + engine: about the wall time on a free core (the
        # database server's own work on PostgreSQL is not in it).
        cpu = time.process_time() - c0
        t0 = time.perf_counter()
        before = before_path()
        t_before = time.perf_counter() - t0
        assert len(before) >= len(forecasts)
        runs.append((t_read + t_engine, t_read, t_engine, cpu, t_before))
    _, t_read, t_engine, cpu, _ = min(runs)
    t_before = min(r[4] for r in runs)
    t0 = time.perf_counter()
    with archive.engine.connect() as conn:
        whole = pd.read_sql("SELECT * FROM cycle_demand", conn)
    t_base = time.perf_counter() - t0
    archive.dispose()
    return {"fill": t_fill, "read": t_read, "engine": t_engine, "base": t_base, "rows": res.rows,
            "stored": len(whole), "before": t_before, "read_rows": len(forecasts), "cpu": cpu}


def run(label: str, url: str, baseline_url: str, acc_url: str, args) -> None:
    rng = np.random.default_rng(5)
    cycle = make_cycle(pd.Timestamp("2026-01-01"), args.items, args.months, rng)
    t_archive, t_base, rows = bench_write(url, cycle, baseline_url)
    print(f"{label}: archive {args.items:,} items x {args.months} months ({rows:,} rows): {t_archive:.2f} s "
          f"(target <= 5 s); baseline pandas to_sql of the same rows {t_base:.2f} s; "
          f"ratio {t_archive / t_base:.2f}", flush=True)
    a = bench_accuracy(acc_url, args.items, args.months, args.cycles, rng)
    total = a["read"] + a["engine"]
    print(f"{label}: accuracy by lag over {args.cycles} cycles x {args.items:,} items ({a['stored']:,} archived "
          f"demand rows, {a['read_rows']:,} read, {a['rows']:,} evaluated at lags 1/3/6): {total:.2f} s = read "
          f"{a['read']:.2f} s + engine {a['engine']:.2f} s (target <= 2 s; CPU {a['cpu']:.2f} s); baseline read_sql of the whole demand "
          f"table {a['base']:.2f} s; ratio {total / a['base']:.2f}; the read path before this one "
          f"{a['before']:.2f} s, ratio {a['read'] / a['before']:.2f}  [filling the archive took {a['fill']:.1f} s]",
          flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--months", type=int, default=18)
    ap.add_argument("--cycles", type=int, default=24)
    ap.add_argument("--pg", help="URL of an empty PostgreSQL database (default: a throwaway cluster)")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = ap.parse_args()
    import os
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (timings scale with it)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{tmp}/a.sqlite", f"sqlite:///{tmp}/baseline.sqlite", f"sqlite:///{tmp}/acc.sqlite",
            args)
    if args.no_pg:
        return 0
    if args.pg:
        run("PostgreSQL", args.pg, args.pg, args.pg, args)
        return 0
    from tests.archive_db import Cluster, _pg_bin
    bindir = _pg_bin()
    if bindir is None:
        print("PostgreSQL: not installed (initdb/pg_ctl); pass --pg URL or --no-pg")
        return 1
    cluster = Cluster(bindir)
    cluster.start()
    try:
        run("PostgreSQL", cluster.new_database(), cluster.new_database(), cluster.new_database(), args)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
