"""Exact decomposition of the balancing LP into independent groups, solved apart and stitched.

Two columns are coupled when some row of A has a nonzero in both: a capacity row couples the items
routed over that resource, an inventory row couples a parent's starts with its components, a
demand row an item's shipments and backlog.  The connected components of the bipartite graph
rows x columns of A (scipy.sparse.csgraph) are therefore independent LPs: the optimum of the whole
is the union of the components' optima, its objective their sum (plus the LP's constant offset),
each row's dual and each column's reduced cost those of its component.  Taking the groups from A
itself rather than from the Routing/BOM/Supply tables keeps this exact whatever coupling rows the
model gains later.  Components smaller than ``MIN_GROUP_COLS`` are packed together (a block-
diagonal LP is still exact) so a plan with thousands of unrouted items is not thousands of solves.

MIP (whole units, min batch, lot size): the components share no row, so the integer optimum splits
the same way.  Each group stops at the relative gap ``mip_gap``; the overall gap is computed from the
sums, (sum of incumbents - sum of dual bounds) / |sum of incumbents|, which is at most the largest
group gap whenever the groups' objectives have one sign (cost mode: all costs >= 0).

Solving: groups of at least ``POOL_MIN_COLS`` columns go to a process pool (concurrent.futures,
spawned workers) when there are two or more of them; the rest are solved in this process on one
persistent ``HighsSolver`` each, while the pool works.  A re-solve (an explanation with one
constraint relaxed, the unconstrained comparison, the MIP's LP relaxation) re-solves only the
groups whose bounds changed: the others keep their result.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sop_xl.engine.balance.lp import LP
from sop_xl.engine.balance.solve import HighsSolver, Solution, highs_method_options, highspy

# Components smaller than this many columns are packed into one group (a HiGHS call costs ~1 ms
# of set-up; ~100 items x 18 periods).
MIN_GROUP_COLS = 2_000
# A group this large is worth a worker process.  Spawning workers (each imports numpy, pandas,
# scipy, highspy) and shipping the arrays costs ~1-2 s of CPU and, on a busy machine, ~5 s of wall.
# Measured (4 plants of K items, 2 workers, machine load ~5 on 2 cores, plan solve only):
# K=600 (~30k columns, ~0.8 s CPU per group) pool 14.4 s wall vs 9.4 s in-process;
# K=1,200 (~59k columns, ~2.7 s CPU per group) pool 37 s vs 44 s.  Break-even in between.
POOL_MIN_COLS = 50_000


# ----------------------------------------------------------------------------- groups
def components(lp: LP) -> tuple[int, np.ndarray, np.ndarray]:
    """Connected components of A: (count, component of each column, component of each row).

    A column or row without nonzeros is a component of its own."""
    n, m = lp.ncols, lp.nrows
    cols = np.repeat(np.arange(n), np.diff(lp.start))
    g = coo_matrix((np.ones(len(cols), dtype=np.int8), (cols, n + lp.index.astype(np.int64))), shape=(n + m, n + m))
    count, label = connected_components(g, directed=False)
    return count, label[:n], label[n:]


def groups(lp: LP, min_cols: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The LP's independent groups as (columns, rows), each sorted: components of at least
    ``min_cols`` (default MIN_GROUP_COLS) columns alone, smaller ones packed in order until a group
    reaches ``min_cols``."""
    min_cols = MIN_GROUP_COLS if min_cols is None else min_cols
    count, ccol, crow = components(lp)
    size = np.bincount(ccol, minlength=count)
    small = size < min_cols
    gid = np.empty(count, dtype=np.int64)
    big = np.flatnonzero(~small)
    gid[big] = np.arange(len(big))
    packed = np.cumsum(size[small]) // max(min_cols, 1)  # bin of each small component, in order
    _, packed = np.unique(packed, return_inverse=True)
    gid[small] = len(big) + packed
    ng = int(gid.max()) + 1 if count else 0
    gcol, grow = gid[ccol], gid[crow]
    cols_by = np.split(np.argsort(gcol, kind="stable"), np.cumsum(np.bincount(gcol, minlength=ng))[:-1])
    rows_by = np.split(np.argsort(grow, kind="stable"), np.cumsum(np.bincount(grow, minlength=ng))[:-1])
    return [(c, r) for c, r in zip(cols_by, rows_by) if len(c) or len(r)]


def sub_lp(lp: LP, cols: np.ndarray, rows: np.ndarray) -> LP:
    """The LP restricted to ``cols`` x ``rows`` (a group: no nonzero leaves it), offset 0, own bounds."""
    rmap = np.full(lp.nrows, -1, dtype=np.int64)
    rmap[rows] = np.arange(len(rows))
    counts = np.diff(lp.start)[cols]
    starts = np.zeros(len(cols) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    pos = np.repeat(lp.start[cols] - starts[:-1], counts) + np.arange(starts[-1])
    index = rmap[lp.index[pos]]
    assert (index >= 0).all(), "a group's columns reach a row outside the group"
    return LP(cost=lp.cost[cols], col_lo=lp.col_lo[cols].copy(), col_hi=lp.col_hi[cols].copy(),
              row_lo=lp.row_lo[rows].copy(), row_hi=lp.row_hi[rows].copy(), start=starts,
              index=index.astype(np.int32), value=lp.value[pos], offset=0.0,
              integer=None if lp.integer is None or not lp.integer[cols].any() else lp.integer[cols])


# ----------------------------------------------------------------------------- bases
def basis_arrays(basis) -> tuple[np.ndarray, np.ndarray] | None:
    """A HiGHS basis as two int8 arrays (picklable: what a worker returns and receives)."""
    if basis is None or isinstance(basis, tuple):
        return basis
    return (np.fromiter((int(s) for s in basis.col_status), dtype=np.int8, count=len(basis.col_status)),
            np.fromiter((int(s) for s in basis.row_status), dtype=np.int8, count=len(basis.row_status)))


def highs_basis(arrays):
    if arrays is None or not isinstance(arrays, tuple):
        return arrays
    st = [highspy.HighsBasisStatus(k) for k in range(5)]
    b = highspy.HighsBasis()
    b.col_status = [st[k] for k in arrays[0].tolist()]
    b.row_status = [st[k] for k in arrays[1].tolist()]
    b.valid = True
    return b


class GroupBases(list):
    """One basis per group (HiGHS's object, or int8 arrays from a worker; converted only when a
    group is warm-started on the other side), with the groups' shapes to check a warm start against."""

    def __init__(self, shapes, bases):
        super().__init__(bases)
        self.shapes = tuple(shapes)


# ----------------------------------------------------------------------------- solving
def solve_task(lp: LP, options: dict, deadline: float, mip_gap, basis) -> tuple[Solution, object]:
    """Solve one group from scratch (in a worker process) by ``deadline`` (time.time(): a task may
    wait in the queue): its solution and final basis arrays."""
    s = HighsSolver(lp, options, max(deadline - time.time(), 1e-3), mip_gap)
    if basis is not None:
        s.set_basis(highs_basis(basis))
    sol = s.run()
    sol.timings["solve_cpu_s"] += s.load_cpu_s
    return sol, (basis_arrays(s.basis()) if sol.ok and not lp.is_mip else None)


def _cores() -> int:
    """CPUs this process may run on (a container or affinity mask may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _key(lp: LP) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for a in (lp.col_lo, lp.col_hi, lp.row_lo, lp.row_hi):
        h.update(np.ascontiguousarray(a).data)
    h.update(b"mip" if lp.is_mip else b"lp")
    return h.digest()


@dataclass
class Group:
    cols: np.ndarray  # global column of each local column
    rows: np.ndarray
    lp: LP  # the group's own LP (its bounds follow the session's bound changes)
    method: str
    options: dict
    remote: bool  # solved in the process pool
    solver: HighsSolver | None = None  # in-process groups: kept, so re-solves start warm
    basis: tuple | None = None  # remote groups: the last basis (arrays), sent with the next solve
    results: dict = field(default_factory=dict)  # bounds key -> Solution (the last two)


class GroupedSession:
    """The HighsSolver interface (run, bound changes, basis, LP relaxation) over independent groups.

    ``run`` returns one Solution in the whole LP's column and row order."""

    def __init__(self, lp: LP, parts, method_of, time_limit: float, mip_gap: float | None = None,
                 max_workers: int | None = None, pool_min_cols: int | None = None):
        t0, c0 = time.perf_counter(), time.process_time()
        self.lp, self.time_limit, self.mip_gap = lp, float(time_limit), mip_gap
        self.workers = max(1, int(max_workers or _cores()))
        whole = len(parts) == 1
        pool_min_cols = POOL_MIN_COLS if pool_min_cols is None else int(pool_min_cols)
        big = sum(len(c) >= pool_min_cols for c, _ in parts)
        use_pool = self.workers > 1 and big >= 2
        self.col_group = np.empty(lp.ncols, dtype=np.int64)
        self.col_local = np.empty(lp.ncols, dtype=np.int64)
        self.row_group = np.empty(lp.nrows, dtype=np.int64)
        self.row_local = np.empty(lp.nrows, dtype=np.int64)
        self.groups: list[Group] = []
        for k, (c, r) in enumerate(parts):
            self.col_group[c], self.col_local[c] = k, np.arange(len(c))
            self.row_group[r], self.row_local[r] = k, np.arange(len(r))
            sub = (replace(lp, col_lo=lp.col_lo.copy(), col_hi=lp.col_hi.copy(), row_lo=lp.row_lo.copy(),
                           row_hi=lp.row_hi.copy(), offset=0.0) if whole else sub_lp(lp, c, r))
            method = method_of(len(c))
            g = Group(c, r, sub, method, highs_method_options(method, sub.is_mip), use_pool and len(c) >= pool_min_cols)
            if not g.remote:
                g.solver = HighsSolver(sub, g.options, time_limit, mip_gap if sub.is_mip else None)
            self.groups.append(g)
        self._pool = None
        self.load_s = time.perf_counter() - t0
        self.load_cpu_s = time.process_time() - c0

    # -- facts for the run's messages
    @property
    def parallel(self) -> int:
        return sum(g.remote for g in self.groups)

    # -- solving
    def _pool_executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            # spawn, not fork: forking a process that runs solver threads can deadlock
            self._pool = ProcessPoolExecutor(max_workers=min(self.workers, self.parallel),
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _store(self, g: Group, key: bytes, sol: Solution) -> None:
        g.results[key] = sol
        while len(g.results) > 2:  # the base plan and the latest re-solve are all a session reuses
            g.results.pop(next(iter(g.results)))

    def run(self) -> Solution:
        t0, c0 = time.perf_counter(), time.process_time()
        deadline = t0 + self.time_limit
        keys = [_key(g.lp) for g in self.groups]
        todo = [(g, k) for g, k in zip(self.groups, keys) if k not in g.results]
        futures = []
        for g, k in todo:
            if g.remote:
                gap = self.mip_gap if g.lp.is_mip else None
                try:
                    futures.append((g, k, self._pool_executor().submit(
                        solve_task, g.lp, g.options, time.time() + self.time_limit, gap, g.basis)))
                except Exception:  # no worker could be started: solve it here
                    self._localize(g)
        worker_cpu = 0.0
        for g, k in todo:
            if not g.remote:
                g.solver.time_limit = max(deadline - time.perf_counter(), 1e-3)
                self._store(g, k, g.solver.run())
        for g, k, f in futures:
            try:
                sol, g.basis = f.result()
                worker_cpu += sol.timings.get("solve_cpu_s", 0.0)
            except Exception:  # a worker died (memory, a killed process): solve the group here
                self._localize(g)
                g.solver.time_limit = max(deadline - time.perf_counter(), 1e-3)
                sol = g.solver.run()
            self._store(g, k, sol)
        out = self._stitch([g.results[k] for g, k in zip(self.groups, keys)])
        out.timings = {"solve_s": time.perf_counter() - t0, "solve_cpu_s": time.process_time() - c0 + worker_cpu,
                       "worker_cpu_s": worker_cpu}
        return out

    def _localize(self, g: Group) -> None:
        g.remote = False
        g.solver = HighsSolver(g.lp, g.options, self.time_limit, self.mip_gap if g.lp.is_mip else None)
        if g.basis is not None:
            g.solver.set_basis(highs_basis(g.basis))

    def _stitch(self, sols: list[Solution]) -> Solution:
        lp = self.lp
        bad = [s for s in sols if not s.ok]
        if bad:
            return Solution(status=bad[0].status)
        out = Solution(ok=True, status="optimal", x=np.zeros(lp.ncols))
        duals = all(s.row_dual is not None for s in sols)
        if duals:
            out.row_dual, out.col_dual = np.zeros(lp.nrows), np.zeros(lp.ncols)
        for g, s in zip(self.groups, sols):
            out.x[g.cols] = s.x
            if duals:
                out.row_dual[g.rows], out.col_dual[g.cols] = s.row_dual, s.col_dual
        out.objective = sum(s.objective for s in sols) + lp.offset
        out.iterations = sum(s.iterations for s in sols)
        if lp.is_mip:
            bound = sum(s.bound for s in sols) + lp.offset
            out.bound = bound
            out.gap = (out.objective - bound) / max(abs(out.objective), 1e-9) if np.isfinite(bound) else float("nan")
            out.gap = max(out.gap, 0.0)
        pd = [s.pd_gap for s in sols if s.pd_gap == s.pd_gap]
        out.pd_gap = max(pd) if pd else float("nan")
        return out

    # -- the HighsSolver interface, in the whole LP's indices
    def set_row_bounds(self, rows, lo, hi) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        for k in np.unique(self.row_group[rows]):
            m = self.row_group[rows] == k
            g, loc = self.groups[k], self.row_local[rows[m]]
            g.lp.row_lo[loc], g.lp.row_hi[loc] = np.asarray(lo)[m], np.asarray(hi)[m]
            if g.solver is not None:
                g.solver.set_row_bounds(loc, g.lp.row_lo[loc], g.lp.row_hi[loc])

    def set_col_bounds(self, cols, lo, hi) -> None:
        cols = np.asarray(cols, dtype=np.int64)
        for k in np.unique(self.col_group[cols]):
            m = self.col_group[cols] == k
            g, loc = self.groups[k], self.col_local[cols[m]]
            g.lp.col_lo[loc], g.lp.col_hi[loc] = np.asarray(lo)[m], np.asarray(hi)[m]
            if g.solver is not None:
                g.solver.set_col_bounds(loc, g.lp.col_lo[loc], g.lp.col_hi[loc])

    def set_option(self, key: str, value) -> None:
        for g in self.groups:
            if key == "solver" and g.method == "pdlp":
                continue  # no basis to start from: a PDLP group stays first-order
            g.options = {**g.options, key: value}
            if g.solver is not None:
                g.solver.set_option(key, value)

    def drop_integrality(self) -> None:
        for g in self.groups:
            if g.lp.is_mip:
                if g.solver is not None:
                    g.solver.drop_integrality()
                g.lp = replace(g.lp, integer=None)
                g.options = highs_method_options("simplex")

    def basis(self):
        """One group: HiGHS's own basis object (as before decomposition); several: GroupBases."""
        if len(self.groups) == 1 and self.groups[0].solver is not None:
            return self.groups[0].solver.basis()
        bases = [g.solver.basis() if g.solver is not None else g.basis for g in self.groups]
        return GroupBases([(g.lp.ncols, g.lp.nrows) for g in self.groups], bases)

    def set_basis(self, basis) -> bool:
        if isinstance(basis, GroupBases):
            if basis.shapes != tuple((g.lp.ncols, g.lp.nrows) for g in self.groups):
                return False
            ok = True
            for g, b in zip(self.groups, basis):
                if g.solver is not None:
                    ok &= g.solver.set_basis(highs_basis(b))
                else:
                    g.basis = basis_arrays(b)
                    g.options = {**g.options, "solver": "simplex"}
            return ok
        if len(self.groups) == 1 and self.groups[0].solver is not None:
            return self.groups[0].solver.set_basis(basis)
        return False

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self):  # a plan abandoned half-way (an exception) must not leave workers behind
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
