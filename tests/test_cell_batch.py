"""The cells' batcher (sop_xl/excel/batch.py): concurrent requests coalesced, errors kept to their
own request, worker processes used when ready and never required - and the forecast cells' batches
give exactly the lone answers; the result cache in front of it computes a key in flight once."""
from __future__ import annotations

import concurrent.futures as cf
import math
import threading
import time

import pytest

from sop_xl import udfs
from sop_xl.excel.batch import Batcher


class Recorder:
    """A run() that squares numbers, slowly enough for concurrent callers to pile up, and records
    every batch it was given."""

    def __init__(self, delay: float = 0.03):
        self.delay, self.batches, self.lock = delay, [], threading.Lock()

    def __call__(self, key, items):
        with self.lock:
            self.batches.append((key, list(items)))
        time.sleep(self.delay)
        out = []
        for x in items:
            out.append((False, ValueError(f"negative: {x}")) if x < 0 else (True, key * x * x))
        return out


def _together(fn, args, threads: int = 6):
    """Call ``fn(*a)`` for every ``a`` from a pool of threads, as xlwings runs background cells."""
    def call(a):
        try:
            return fn(*a)
        except Exception as e:  # noqa: BLE001 - the test compares exceptions too
            return e
    with cf.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(call, args))


def test_a_lone_request_runs_at_once_in_this_process():
    run = Recorder(delay=0)
    b = Batcher(run, slots=4)
    assert b.compute(2, 3) == 18
    assert run.batches == [(2, [3])] and b.batches == 1 and b.remote_batches == 0
    assert not b.workers_ready and b._pool is None  # no process was started for one cell


def test_concurrent_requests_share_batches():
    run = Recorder()
    b = Batcher(run, slots=1)
    got = _together(b.compute, [(1, i) for i in range(40)])
    assert got == [i * i for i in range(40)]
    assert sorted(x for _, items in run.batches for x in items) == list(range(40))  # each once
    assert len(run.batches) < 40 and max(len(items) for _, items in run.batches) > 1


def test_requests_of_different_kinds_never_share_a_batch():
    run = Recorder()
    b = Batcher(run, slots=1)
    args = [(1 + i % 3, i) for i in range(30)]
    assert _together(b.compute, args) == [(1 + i % 3) * i * i for i in range(30)]
    assert all(len({k}) == 1 for k, _ in run.batches)
    assert {x for k, items in run.batches for x in items if k == 2} == {i for i in range(30) if i % 3 == 1}


def test_an_error_stays_with_its_own_request():
    b = Batcher(Recorder(), slots=1)
    got = _together(b.compute, [(1, -i if i == 5 else i) for i in range(12)])
    assert isinstance(got[5], ValueError) and str(got[5]) == "negative: -5"
    assert [g for i, g in enumerate(got) if i != 5] == [i * i for i in range(12) if i != 5]


def test_a_run_that_raises_fails_its_batch_and_nothing_else():
    calls = []

    def run(key, items):
        calls.append(list(items))
        if 13 in items:
            raise RuntimeError("boom")
        return [(True, x + key) for x in items]

    b = Batcher(run, slots=1)
    with pytest.raises(RuntimeError, match="boom"):
        b.compute(0, 13)
    assert b.compute(0, 14) == 14  # the batcher goes on


def test_without_worker_processes_the_answers_are_the_same():
    """A run() that cannot be sent to a process (a lambda: not picklable) breaks the pool: the
    batcher computes everything here instead, with the same answers."""
    b = Batcher(lambda key, items: [(True, key + x) for x in items], slots=2)
    b.start_workers()
    deadline = time.monotonic() + 120
    while not b._pool_failed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b._pool_failed and not b.workers_ready  # the warm-up could not even be sent
    assert _together(b.compute, [(1, i) for i in range(20)]) == [1 + i for i in range(20)]
    b.close()


def stuck_in_a_worker(key, items):
    """A run() that never finishes in a worker process (and takes half a second here)."""
    import multiprocessing

    time.sleep(3600 if multiprocessing.parent_process() is not None else 0.5)
    return [(True, key + x) for x in items]


@pytest.mark.slow
def test_a_stuck_worker_is_ended_and_its_batch_runs_here(monkeypatch):
    from sop_xl.excel import batch

    monkeypatch.setattr(batch, "remote_timeout", lambda items: 2.0)
    b = Batcher(stuck_in_a_worker, slots=2)
    b.start_workers()
    deadline = time.monotonic() + 300
    while not b.workers_ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.workers_ready
    procs = list(b._pool._processes.values())
    with cf.ThreadPoolExecutor(2) as ex:
        first = ex.submit(b.compute, 1, 1)  # here, half a second
        time.sleep(0.1)
        second = ex.submit(b.compute, 1, 2)  # to the worker, which never answers
        assert first.result(30) == 2 and second.result(60) == 3
    assert b._pool_failed and b._pool is None and b.remote_batches == 0
    deadline = time.monotonic() + 30
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(p.is_alive() for p in procs)  # ended, not left to block this process's exit


# ------------------------------------------------------------------ the forecast cells' batches
def _histories() -> list[tuple[float, ...]]:
    """Histories of every kind a cell meets: seasonal (long and 2-4 seasons), trending, short,
    very short, intermittent, constant, all zero, negative values, leading zeros."""
    seas = [100 + 30 * math.sin(2 * math.pi * m / 12) + 2 * m + (7 * m % 5) for m in range(60)]
    return [
        tuple(seas),
        tuple(seas[:30]),
        tuple(v * 1000 for v in seas[:48]),
        tuple(float(50 + 3 * m + (m * 13 % 7)) for m in range(20)),
        tuple(float(10 + m % 3) for m in range(10)),
        (5.0, 7.0, 6.0),
        tuple(float(x) for x in [0, 0, 4, 0, 0, 0, 9, 0, 1, 0, 0, 3, 0, 0, 0, 7, 0, 2, 0, 0, 0, 5, 0, 0] * 2),
        (12.0,) * 30,
        (0.0,) * 26,
        tuple(float(-20 + 5 * (m % 12) - m) for m in range(40)),
        (0.0,) * 6 + tuple(float(20 + m % 12) for m in range(36)),
    ]


@pytest.mark.parametrize("model", ["auto", "AutoETS", "CrostonSBA"])
def test_a_batch_of_histories_gives_each_its_lone_answer(model):
    key = (12, model, 12, udfs.LEVELS)
    hs = _histories()
    together = udfs._forecast_batch(key, hs)
    alone = [udfs._forecast_batch(key, [h])[0] for h in hs]
    assert [ok for ok, _ in together] == [True] * len(hs)
    assert together == alone  # every number, model name and σ equal (frozen dataclasses)


@pytest.mark.slow
def test_forecast_cells_from_worker_processes_equal_the_lone_answers(monkeypatch):
    """SOP_FORECAST from xlwings-like background threads with a worker process (spawned, as on
    Windows): batches run in both, and every cell shows its lone answer."""
    hs = _histories() * 3
    hs = [tuple(v + i for v in h) for i, h in enumerate(hs)]  # 33 distinct histories
    cells = [[[v] for v in h] for h in hs]
    udfs.clear_cache()
    expected = [udfs.SOP_FORECAST(c, 12) for c in cells]
    assert all(isinstance(e, list) for e in expected)
    batcher = Batcher(udfs._forecast_batch, slots=2, warm_up=udfs._warm_worker)
    monkeypatch.setattr(udfs, "CELLS", batcher)
    try:
        batcher.start_workers()
        deadline = time.monotonic() + 300
        while not batcher.workers_ready and time.monotonic() < deadline:
            time.sleep(0.1)
        assert batcher.workers_ready
        udfs.clear_cache()
        got = _together(udfs.SOP_FORECAST, [(c, 12) for c in cells])
        assert got == expected
        assert batcher.remote_batches > 0 and batcher.batches < len(cells)
    finally:
        batcher.close()
        udfs.clear_cache()


def test_a_reimported_udfs_module_stops_the_old_workers(monkeypatch):
    """xlwings re-imports a changed sop_xl/udfs.py: the old batcher's processes must not linger."""
    import importlib

    closed = []
    old = Batcher(lambda key, items: [(True, x) for x in items], slots=1)
    monkeypatch.setattr(old, "close", lambda wait=True: closed.append(wait))
    monkeypatch.setattr(udfs, "CELLS", old)
    importlib.reload(udfs)
    assert closed == [False] and udfs.CELLS is not old


def test_cells_through_xlwings_own_background_machinery(monkeypatch):
    """SOP_FORECAST and SOP_MODEL cells recalculated as xlwings recalculates background functions
    (its own ``async_thread`` on its ``com_executor``; Excel's side of the COM calls stubbed): every
    cell's formula is written again once, and xlwings' cache holds the synchronous answer."""
    import asyncio

    from tests.xlwings_udfs_standin import load_xlwings_udfs

    xu = load_xlwings_udfs(monkeypatch.setitem)
    cells = [[[v] for v in h] for h in _histories()]
    udfs.clear_cache()
    expected = [udfs.SOP_FORECAST(c, 12) for c in cells] + [udfs.SOP_MODEL(c, 12) for c in cells]
    udfs.clear_cache()
    monkeypatch.setattr(udfs, "CELLS", Batcher(udfs._forecast_batch, slots=1))
    written = []

    class Cell:
        def __init__(self, address):
            self.address = address

        async def get_formula2(self):
            return "=SOP_FORECAST(A1:A60, 12)"

        async def set_formula2(self, formula):
            written.append(self.address)

    async def recalculate():
        calls = [(udfs.SOP_FORECAST, c) for c in cells] + [(udfs.SOP_MODEL, c) for c in cells]
        await asyncio.gather(*(xu.async_thread(Cell(i), True, f, (c, 12), i, False) for i, (f, c) in enumerate(calls)))

    asyncio.run(recalculate())
    assert sorted(written) == list(range(len(expected)))
    assert [xu.cache[i] for i in range(len(expected))] == expected
    assert udfs.CELLS.requests == len(cells)  # SOP_MODEL shared SOP_FORECAST's engine call
    assert udfs.CELLS.batches < len(cells)  # histories asked together were forecast together
    udfs.clear_cache()


def test_the_result_cache_computes_a_key_once_while_it_is_in_flight():
    """Cells over one history asked at the same time share one computation (the result cache's own
    rule, before any batcher): the others wait for it; an unexpected failure is not shared."""
    from sop_xl.excel.udf import LRU

    cache, calls, gate = LRU(8), [], threading.Event()

    def slow():
        calls.append(1)
        gate.wait(30)
        return 42

    with cf.ThreadPoolExecutor(6) as ex:
        futures = [ex.submit(cache.get, "k", slow) for _ in range(6)]
        time.sleep(0.2)
        gate.set()
        assert [f.result(30) for f in futures] == [42] * 6
    assert calls == [1] and cache.misses == 1

    def boom():
        calls.append(2)
        raise RuntimeError("unexpected")

    with pytest.raises(RuntimeError):
        cache.get("b", boom)
    with pytest.raises(RuntimeError):
        cache.get("b", boom)  # not cached: tried again
    assert calls == [1, 2, 2]
