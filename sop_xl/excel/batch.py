"""Cells computed together: concurrent requests coalesced into batches, run on up to N cores.

Why: a forecast cell's engine call costs ~35 ms of model fits plus per-call overhead, and one
Python process fits on one core (the fits hold the GIL: two threads ran 1.14x faster than one).
When xlwings runs worksheet functions in the background (``async_mode="threading"``), it calls
them from its thread pool, several at a time; each caller here hands its request to a
:class:`Batcher`, which

* runs one request at once, in the calling thread, when nothing else is waiting (a lone cell pays
  nothing extra: no process, no copy),
* gathers the requests that arrive while a batch runs into the next batch of the same kind (one
  engine call for many histories: its per-call overhead paid once),
* runs up to ``slots`` batches at the same time: one in this process, the others in worker
  processes (a :class:`concurrent.futures.ProcessPoolExecutor`, started the first time two batches
  wait at once, with the "spawn" start method everywhere, as Windows has it, and warmed up before it
  is used, so that no request waits for a process to import the engine),

Identical requests are not merged here: the cells' result cache (:class:`sop_xl.excel.udf.LRU`), in
front of the batcher, already computes a key in flight once.

Every request gets exactly the answer it would get alone: ``run(key, items)`` must compute each
item independently of the others in its batch (the forecast engine fits every series on its own;
tests compare batched and lone answers). ``run`` returns one ``(True, value)`` or ``(False,
exception)`` per item, so that one bad item cannot fail its neighbours.

If a worker process cannot be started or dies (a broken pool, an OS error), the batch runs in this
process instead and the batcher keeps to this process from then on: slower, never wrong.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

ENV_SLOTS = "SOP_XL_CELL_WORKERS"  # batches at once (1 = this process only); default below
MAX_DEFAULT_SLOTS = 4  # each worker process holds its own engine (~300 MB): a few cores are plenty
MAX_BATCH = 64  # requests per batch: bounds the wait of the first one
LINGER = 0.005  # seconds a batch waits for more requests while other work runs (see _linger)


def default_slots() -> int:
    """Batches run at once: ``SOP_XL_CELL_WORKERS`` if set to a whole number >= 1, else the
    machine's cores, at most MAX_DEFAULT_SLOTS."""
    raw = os.environ.get(ENV_SLOTS, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            log.warning("%s=%r is not a whole number: using the default", ENV_SLOTS, raw)
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_SLOTS))


@dataclass(eq=False)
class _Request:
    key: Any  # requests with equal keys may share a batch
    item: Any  # what run() gets for this request
    waiting: bool = True  # not yet taken into a batch
    done: threading.Event = field(default_factory=threading.Event)
    outcome: tuple = (False, None)


def remote_timeout(items: int) -> float:
    """Seconds a batch may take in a worker process before the worker counts as stuck (the batch
    then runs here): far more than any batch needs (a 240-month horizon costs well under a second a
    history), so that a cell can wait, but never for ever."""
    return 60.0 + 5.0 * items


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a broken or stuck pool without waiting for it: its processes are ended (a stuck one
    would otherwise keep this process from exiting)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        try:
            proc.terminate()
        except (OSError, AttributeError, ValueError):  # already gone
            pass


def _warm(run: Callable) -> bool:
    """A worker's first task: import what ``run`` needs (module import happens on unpickling)."""
    return callable(run)


class Batcher:
    """See the module docstring. ``run(key, items) -> [(ok, value_or_exception), ...]`` must be a
    module-level function (worker processes receive it by reference). ``warm_up``: an optional
    module-level function a new worker process runs first (e.g. one tiny forecast, so that numba's
    compiled code is loaded before the first real batch)."""

    def __init__(self, run: Callable, slots: int | None = None, max_batch: int = MAX_BATCH,
                 warm_up: Callable[[], Any] | None = None):
        self.run, self.max_batch, self.warm_up = run, max_batch, warm_up
        self.slots = default_slots() if slots is None else max(1, int(slots))
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._present = 0  # requests not yet answered (waiting or in a running batch)
        self._here_busy = False  # the in-process slot (at most one: the fits hold the GIL)
        self._remote_busy = 0
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pool_ready = False
        self._pool_failed = False
        self.batches = self.requests = self.remote_batches = 0  # counters (bench, tests)

    # ------------------------------------------------------------------------------- public
    def compute(self, key, item):
        """The value for ``item`` (run alone or in a batch with other items of ``key``), or raise
        its exception."""
        with self._cond:
            req = _Request(key, item)
            self._pending.append(req)
            self._present += 1
            self.requests += 1
            self._cond.notify_all()  # a runner may take it into its batch
            while not req.done.is_set():
                slot = self._free_slot() if req.waiting else None
                if slot is not None:
                    self._occupy(slot)
                    self._linger(req)
                    if req.waiting:
                        batch = self._take_batch(req)
                        break
                    self._release(slot)  # another runner took this request meanwhile
                    self._cond.notify_all()
                    continue
                if req.waiting and self._want_pool():
                    self._start_pool()
                self._cond.wait()
            else:
                return self._result(req)
        try:
            remote = self._run_batch(batch, slot)
        finally:
            with self._cond:
                self._release(slot)
                self.batches += 1
                self.remote_batches += bool(remote)
                self._present -= len(batch)
                self._cond.notify_all()
        return self._result(req)

    def start_workers(self) -> None:
        """Start the worker processes now rather than when two batches first wait (they warm up in
        the background; :attr:`workers_ready` says when they take batches)."""
        with self._cond:
            if self._want_pool():
                self._start_pool()

    @property
    def workers_ready(self) -> bool:
        return self._pool_ready

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes (they also stop when this process exits); ``wait``: until they
        have ended. A batch running in one then runs here."""
        with self._cond:
            pool, self._pool, self._pool_ready = self._pool, None, False
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------------------- slots
    def _free_slot(self) -> str | None:
        if not self._here_busy:
            return "here"
        if self._pool_ready and self._remote_busy < self.slots - 1:
            return "pool"
        return None

    def _occupy(self, slot: str) -> None:
        if slot == "here":
            self._here_busy = True
        else:
            self._remote_busy += 1

    def _release(self, slot: str) -> None:
        if slot == "here":
            self._here_busy = False
        else:
            self._remote_busy -= 1

    def _linger(self, req: _Request) -> None:
        """While other batches run, wait up to LINGER seconds for more requests of ``req``'s kind:
        the callers whose batch just finished come back at once with their next cells, and one
        engine call for several histories costs much less than one each. A lone cell (nothing else
        running or waiting: Excel calling synchronous cells one after another) never waits."""
        running = int(self._here_busy) + self._remote_busy - 1  # other batches (this slot is taken)
        if not running and self._waiting_like(req) < 2:
            return
        deadline = time.monotonic() + LINGER
        while req.waiting and self._waiting_like(req) < self._fair_share():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _waiting_like(self, req: _Request) -> int:
        return sum(1 for r in self._pending if r.key == req.key)

    def _fair_share(self) -> int:
        """Requests per batch: the callers present shared out over the slots that can run (xlwings
        calls from a pool of a few threads, min(32, cores + 4): one slot taking them all would
        leave the other slots idle), at most max_batch."""
        usable = 1 + ((self.slots - 1) if self._pool_ready else 0)
        return max(1, min(self.max_batch, -(-self._present // usable)))

    def _take_batch(self, first: _Request) -> list[_Request]:
        """``first`` and the oldest waiting requests of its kind, up to a fair share."""
        batch = [first] + [r for r in self._pending if r is not first and r.key == first.key][: self._fair_share() - 1]
        taken = set(map(id, batch))
        self._pending = [r for r in self._pending if id(r) not in taken]
        for r in batch:
            r.waiting = False
        return batch

    # ------------------------------------------------------------------------------- the pool
    def _want_pool(self) -> bool:
        return self.slots > 1 and self._pool is None and not self._pool_failed

    def _start_pool(self) -> None:
        """Start the worker processes (called with the lock held; they warm up in the background
        and count as slots once ready)."""
        try:
            self._pool = cf.ProcessPoolExecutor(max_workers=self.slots - 1,
                                                mp_context=multiprocessing.get_context("spawn"))
            warm = [self._pool.submit(self.warm_up or _warm, *(() if self.warm_up else (self.run,)))
                    for _ in range(self.slots - 1)]
        except Exception as e:  # noqa: BLE001 - no workers: this process does all the work
            self._pool_broken(e)
            return
        remaining = [len(warm)]

        def ready(f: cf.Future) -> None:
            with self._cond:
                if f.exception() is not None:
                    self._pool_broken(f.exception())
                else:
                    remaining[0] -= 1
                    if remaining[0] == 0 and self._pool is not None:
                        self._pool_ready = True
                self._cond.notify_all()

        for f in warm:
            f.add_done_callback(ready)

    def _pool_broken(self, e: BaseException) -> None:
        if not self._pool_failed:
            log.warning("worker processes unavailable (%s: %s): computing in this process only", type(e).__name__,
                        e or "no answer in time")
        self._pool_failed, self._pool_ready = True, False
        pool, self._pool = self._pool, None
        if pool is not None:
            threading.Thread(target=_stop, args=(pool,), daemon=True).start()

    # ------------------------------------------------------------------------------- running
    def _run_batch(self, batch: list[_Request], slot: str) -> bool:
        """Run ``batch`` in ``slot`` and hand every request its outcome; whether a worker process ran it."""
        key, items = batch[0].key, [r.item for r in batch]
        outcomes = None
        if slot == "pool":
            with self._cond:
                pool = self._pool
            try:
                if pool is None:
                    raise RuntimeError("the worker pool was stopped")
                outcomes = pool.submit(self.run, key, items).result(timeout=remote_timeout(len(items)))
            except Exception as e:  # noqa: BLE001 - a broken pool: compute here instead
                with self._cond:
                    self._pool_broken(e)
        remote = outcomes is not None
        if outcomes is None:
            try:
                outcomes = self.run(key, items)
            except Exception as e:  # noqa: BLE001 - run() should not raise; if it does, every item fails with it
                outcomes = [(False, e)] * len(batch)
        for r, out in zip(batch, outcomes):
            r.outcome = out
            r.done.set()
        return remote

    @staticmethod
    def _result(req: _Request):
        ok, value = req.outcome
        if ok:
            return value
        raise value
