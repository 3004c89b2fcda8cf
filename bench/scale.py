"""Forecasting many series out of the workbook: `sop-xl forecast` local vs a Dask local cluster.

    /work/main/.venv/bin/python bench/scale.py [--series 10000] [--months 36] [--workers N] [--skip-local]

Synthetic monthly series (:func:`synthetic_series`: a third smooth, a third seasonal, a third
intermittent) written as a folder of Parquet parts, then forecast by the CLI's own functions with
the workbook's default model choice (``auto``), twice: ``local`` (partitions one after the other in
this process, statsforecast using all cores) and ``dask`` (a local cluster, one worker process per
core). Prints wall seconds, series per second, CPU seconds per series, peak memory (this process;
for Dask also the largest worker), and checks that both give the same numbers and models.
"""
from __future__ import annotations

import sys
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
