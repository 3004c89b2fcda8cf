"""Forecasting many series out of the workbook: `sop-xl forecast` local vs local Dask, Ray and Spark.

    /work/main/.venv/bin/python bench/scale.py [--series 10000] [--months 36] [--workers N]
                                               [--engines local,dask,ray,spark] [--skip-local]

Synthetic monthly series (:func:`synthetic_series`: a third smooth, a third seasonal, a third
intermittent) written as a folder of Parquet parts, then forecast by the CLI's own functions with
the workbook's default model choice (``auto``) on each engine: ``local`` (partitions one after the
other in this process, statsforecast using all cores), ``dask`` (a local cluster, one worker process
per core), ``ray`` and ``spark`` (a local instance with one worker slot per core, through Fugue).
Prints wall seconds (engine start-up excluded, reported apart), series per second, CPU seconds per
series, peak memory (this process; for the clusters also the largest worker), and checks that every
engine gives the local numbers and models.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("smooth", "seasonal", "intermittent")
EDGE_KINDS = ("short", "new", "zero", "constant", "returns")


def synthetic_series(n: int, months: int = 36, seed: int = 0, edge_cases: bool = False,
                     end: str = "2025-12-01") -> pd.DataFrame:
    """``n`` monthly series in long format (item, period, qty), ending at ``end``: smooth (level, trend,
    noise), seasonal (a yearly wave of random phase) and intermittent (mostly zeros, Poisson sizes)
    in turn. ``edge_cases`` mixes in, every 10th series, the classes the engine treats apart: short
    histories, brand-new items, all zeros, a constant, and a series with returns (negative values)."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    level = rng.uniform(20, 500, (n, 1))
    kind = np.arange(n) % 3
    smooth = level * (1 + rng.uniform(-0.01, 0.01, (n, 1)) * t) + rng.normal(0, 1, (n, months)) * level * 0.12
    wave = np.sin(2 * np.pi * (t + rng.integers(0, 12, (n, 1))) / 12)
    seasonal = level * (1 + 0.35 * wave) + rng.normal(0, 1, (n, months)) * level * 0.08
    intermittent = (rng.random((n, months)) < rng.uniform(0.15, 0.45, (n, 1))) * (rng.poisson(4, (n, months)) + 1)
    qty = np.where(kind[:, None] == 0, smooth, np.where(kind[:, None] == 1, seasonal, intermittent))
    qty = np.maximum(qty, 0).round(1)
    first = np.zeros(n, dtype=int)  # index of each series' first month
    if edge_cases:
        edge = np.flatnonzero(np.arange(n) % 10 == 9)
        for j, i in enumerate(edge):
            what = EDGE_KINDS[j % len(EDGE_KINDS)]
            if what == "short":
                first[i] = months - 14
            elif what == "new":
                first[i] = months - 2
            elif what == "zero":
                qty[i] = 0.0
            elif what == "constant":
                qty[i] = 40.0
            else:
                qty[i, rng.choice(months, 3, replace=False)] *= -0.3
    periods = pd.date_range(end=end, periods=months, freq="MS")
    keep = t[None, :] >= first[:, None]
    rows, cols = np.nonzero(keep)
    return pd.DataFrame({"item": np.char.add("SKU", np.char.zfill(rows.astype(str), 6)),
                         "period": periods[cols], "qty": qty[rows, cols]})


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _peak_mb() -> float:
    """Peak resident memory of this process (and of its finished child processes), in MB (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def _worker_stats() -> tuple[float, float]:
    import psutil

    p = psutil.Process()
    t = p.cpu_times()
    return t.user + t.system, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _descendants_stats() -> tuple[float, float]:
    """CPU seconds of this process and all its descendants (a local Ray or Spark runs as children:
    raylet and its workers, the JVM and its Python workers), and the largest peak RSS among the
    descendants (MB, /proc VmHWM)."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    cpu, peak = t.user + t.system + t.children_user + t.children_system, 0.0
    for p in me.children(recursive=True):
        try:
            c = p.cpu_times()
            cpu += c.user + c.system
            with open(f"/proc/{p.pid}/status") as f:
                hwm = next((line.split()[1] for line in f if line.startswith("VmHWM")), "0")
            peak = max(peak, int(hwm) / 1024)
        except (psutil.Error, OSError):
            pass
    return cpu, peak


def _run_fugue(name: str, data: Path, settings, workers: int) -> pd.DataFrame:
    from sop_xl.scale import fugue_engines as fe
    from sop_xl.scale import series_forecast as sf
    from sop_xl.scale.source import Columns

    t0 = time.perf_counter()
    with fe.ENGINES[name](None, workers) as (engine, where, slots):
        start = time.perf_counter() - t0
        c0, _ = _descendants_stats()
        t1 = time.perf_counter()
        out = sf.sort_output(fe.run(data, Columns(), settings, engine, slots))
        wall = time.perf_counter() - t1
        cpu, peak = _descendants_stats()
    n = out["item"].nunique()
    print(f"{name:5} ({where}, start-up {start:.0f} s): {wall:7.1f} s wall, {n / wall:6.1f} series/s, "
          f"{1000 * (cpu - c0) / n:6.1f} ms CPU per series (all processes), peak memory {peak:.0f} MB "
          f"largest worker, {_peak_mb():.0f} MB driver")
    return out


def _run_dask(data: Path, settings, workers: int, n_series: int) -> pd.DataFrame:
    from sop_xl.scale import series_forecast as sf
    from sop_xl.scale.source import read_long_dask

    client = sf.dask_client(workers=workers)
    try:
        before = client.run(_worker_stats)
        all_before, _ = _descendants_stats()
        t0 = time.perf_counter()
        out = sf.sort_output(sf.run_dask(read_long_dask(data), settings, client))
        wall = time.perf_counter() - t0
        after = client.run(_worker_stats)
        all_cpu = _descendants_stats()[0] - all_before
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    cpu = sum(after[w][0] - before[w][0] for w in after)
    peak = max(v[1] for v in after.values())
    print(f"dask  (local cluster, {workers} worker processes x 1 thread):    {wall:7.1f} s wall, "
          f"{n_series / wall:6.1f} series/s, {1000 * cpu / n_series:6.1f} ms CPU per series (workers; "
          f"{1000 * all_cpu / n_series:.1f} all processes), peak memory {peak:.0f} MB per worker, {_peak_mb():.0f} MB client")
    return out


def main() -> int:
    from sop_xl.scale import series_forecast as sf
    from sop_xl.scale.source import read_long

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--horizon", type=int, default=18)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--partition-series", type=int, default=500, help="local: series per engine call")
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--engines", default="local,dask", help="comma-separated: local,dask,ray,spark")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if not (args.skip_local and e == "local")]
    settings = sf.Settings(horizon=args.horizon)
    cores = os.cpu_count() or 1
    print(f"{args.series} synthetic monthly series x {args.months} months (smooth/seasonal/intermittent), "
          f"horizon {args.horizon}, model auto; {cores} core(s); load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "parts"
        data.mkdir()
        frame = synthetic_series(args.series, args.months, seed=11)
        for i, chunk in enumerate(np.array_split(np.arange(len(frame)), 8)):
            frame.iloc[chunk].to_parquet(data / f"part-{i}.parquet", index=False)
        del frame
        results = {}
        if "local" in engines:
            t0, c0 = time.perf_counter(), _cpu_seconds()
            long = read_long(data)
            results["local"] = sf.sort_output(sf.run_local(long, settings, args.partition_series, n_jobs=-1))
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            print(f"local (n_jobs=-1, {args.partition_series} series per engine call): {wall:7.1f} s wall, "
                  f"{args.series / wall:6.1f} series/s, {1000 * cpu / args.series:6.1f} ms CPU per series, "
                  f"peak memory {_peak_mb():.0f} MB")
            del long
        for name in ("ray", "spark"):
            if name in engines:
                results[name] = _run_fugue(name, data, settings, args.workers)
        if "dask" in engines:
            results["dask"] = _run_dask(data, settings, args.workers, args.series)
        values = ["forecast"] + [f"{x}_{lv}" for lv in settings.levels for x in ("lo", "hi")]
        names = list(results)
        for other in names[1:]:
            a, b = results[names[0]], results[other]
            same_rows = a[["item", "period"]].equals(b[["item", "period"]])
            diff = float(np.abs(a[values].to_numpy() - b[values].to_numpy()).max()) if same_rows else float("nan")
            models = bool((a["model"] == b["model"]).all()) if same_rows else False
            print(f"{other} vs {names[0]}: rows {'identical' if same_rows else 'DIFFER'}, largest difference "
                  f"{diff:.3g}, model per series {'identical' if models else 'DIFFERS'}")
        chosen = results[names[-1]].drop_duplicates("item")
        print("models: " + ", ".join(f"{m} {n}" for m, n in chosen["model"].value_counts().items()))
        print("classes: " + ", ".join(f"{m} {n}" for m, n in chosen["demand_class"].value_counts().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
