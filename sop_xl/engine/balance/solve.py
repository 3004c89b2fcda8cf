"""PuLP model construction and solver plumbing for the capacity-balancing LP.

The PuLP model is built row by row from the numpy layout (balance_model.layout): every
constraint is one ``LpAffineExpression`` made from (variable, coefficient) pairs; no Python
``sum()`` over expressions and no PuLP API that PuLP 3.3 flags as removed in 4.0
(variables come from ``prob.add_variable_matrix``, the 4.0 spelling of ``LpVariable.matrix``;
CBC is driven through ``COIN_CMD`` pointed at PuLP's bundled binary instead of the deprecated
``PULP_CBC_CMD`` class).

``BulkHiGHS`` is ``pulp.HiGHS`` (the highspy API solver, which returns row duals in
``constraint.pi``) with a bulk loader: the stock class adds columns and rows one call at a
time and re-sorts ``lp.variables()`` by name on every pass; this subclass reads the same PuLP objects
but hands them to highspy in a single ``passModel`` call and keeps the Highs object for a
warm-started re-solve.
"""

from __future__ import annotations

import os
import time
from itertools import chain
from operator import attrgetter

import numpy as np
import pulp

from sop_xl.engine.balance.model import Layout

try:  # highspy is optional at runtime: fall back to CBC when it is missing
    import highspy  # type: ignore

    HIGHS_OK = hasattr(pulp, "HiGHS")
except Exception:  # pragma: no cover - depends on the installation
    highspy = None
    HIGHS_OK = False


def _swallow_highs_banner() -> None:
    """HiGHS prints a copyright banner to the process's stdout the first time a solver is made; in
    Excel (RunPython) and in the CLI's summary that is noise. Make the first one with stdout muted."""
    if highspy is None:
        return
    import os
    import sys

    try:
        sys.stdout.flush()
        saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no real stdout (e.g. a windowless pythonw): nothing to protect
        return
    try:
        os.dup2(null, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


_swallow_highs_banner()

_get_index = attrgetter("index")
_get_lb = attrgetter("lowBound")
_get_ub = attrgetter("upBound")


def build_pulp(lay: Layout):
    """PuLP problem from the layout. Returns (prob, columns in layout order, rows in layout order)."""
    prob = pulp.LpProblem("sop_balance", pulp.LpMinimize)
    cols: list = []
    for name, (a, b) in lay.blocks.items():
        if b > a:
            cols.extend(prob.add_variable_matrix(name, range(b - a), lowBound=0))
    hi = lay.col_hi
    fin = np.flatnonzero(np.isfinite(hi))
    for k, u in zip(fin.tolist(), hi[fin].tolist()):
        cols[k].upBound = u
    get = cols.__getitem__
    nz = np.flatnonzero(lay.cost)
    prob.setObjective(pulp.LpAffineExpression(zip(map(get, nz.tolist()), lay.cost[nz].tolist()),
                                              constant=lay.offset))

    ptr = np.searchsorted(lay.a_row, np.arange(lay.nrows + 1)).tolist()
    ac = lay.a_col.tolist()
    av = lay.a_val.tolist()
    Aff, Con = pulp.LpAffineExpression, pulp.LpConstraint
    rows: list = []
    named: dict = {}
    for block, (r0, r1) in lay.row_blocks.items():
        if r1 <= r0:
            continue
        if block == "balance":
            sense, rhs = pulp.LpConstraintEQ, lay.row_lo[r0:r1].tolist()
        elif block == "safety":
            sense, rhs = pulp.LpConstraintGE, lay.row_lo[r0:r1].tolist()
        else:
            sense, rhs = pulp.LpConstraintLE, lay.row_hi[r0:r1].tolist()
        for r, b in zip(range(r0, r1), rhs):
            s, e = ptr[r], ptr[r + 1]
            c = Con(Aff(zip(map(get, ac[s:e]), av[s:e])), sense, f"{block}_{r - r0}", b)
            rows.append(c)
            named[c.name] = c
    prob.extend(named)
    return prob, cols, rows


_HIGHS_STATUS = {}
if HIGHS_OK:
    _S = highspy.HighsModelStatus
    _HIGHS_STATUS = {
        _S.kOptimal: (pulp.LpStatusOptimal, pulp.LpSolutionOptimal),
        _S.kInfeasible: (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible),
        _S.kUnboundedOrInfeasible: (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible),
        _S.kUnbounded: (pulp.LpStatusUnbounded, pulp.LpSolutionUnbounded),
    }

    class BulkHiGHS(pulp.HiGHS):
        """pulp.HiGHS with a one-call model loader (see module docstring)."""

        def __init__(self, columns=None, rows=None, **kwargs):
            super().__init__(**kwargs)
            self._cols = columns
            self._rows = rows
            self.build_s = self.run_s = self.build_cpu_s = self.run_cpu_s = 0.0
            self.model_status = None

        def buildSolverModel(self, lp):
            t0, c0 = time.perf_counter(), time.process_time()
            inf = highspy.kHighsInf
            cols = self._cols if self._cols is not None else lp.variables()
            rows = self._rows if self._rows is not None else lp.constraints()
            self._cols, self._rows = cols, rows
            n = len(cols)
            for k, v in enumerate(cols):
                v.index = k
            lo = np.array(list(map(_get_lb, cols)), dtype=float)  # None -> nan
            hi = np.array(list(map(_get_ub, cols)), dtype=float)
            lo[np.isnan(lo)] = -inf
            hi[np.isnan(hi)] = inf
            mult = -1.0 if lp.sense == pulp.LpMaximize else 1.0
            cost = np.zeros(n)
            for v, c in lp.objective.items():
                k = getattr(v, "index", -1)
                if 0 <= k < n and cols[k] is v:
                    cost[k] = mult * c
            # one pass over the PuLP rows; highspy gets CSR arrays in a single passModel call
            exprs = [c.expr for c in rows]
            idx = np.fromiter(map(_get_index, chain.from_iterable(exprs)), dtype=np.int32)
            val = np.fromiter(chain.from_iterable(map(dict.values, exprs)), dtype=float, count=len(idx))
            starts = np.zeros(len(rows) + 1, dtype=np.int32)
            np.cumsum(np.fromiter((len(e) for e in exprs), dtype=np.int32, count=len(rows)), out=starts[1:])
            const = np.fromiter((c.constant for c in rows), dtype=float, count=len(rows))
            sense = np.fromiter((c.sense for c in rows), dtype=np.int8, count=len(rows))
            rlo = np.where(sense == pulp.LpConstraintLE, -inf, -const)
            rhi = np.where(sense == pulp.LpConstraintGE, inf, -const)
            m = highspy.HighsLp()
            m.num_col_ = n
            m.num_row_ = len(rows)
            m.col_cost_ = cost
            m.col_lower_ = lo
            m.col_upper_ = hi
            m.row_lower_ = rlo
            m.row_upper_ = rhi
            m.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
            m.offset_ = mult * float(lp.objective.constant)
            m.a_matrix_.start_ = starts
            m.a_matrix_.index_ = idx
            m.a_matrix_.value_ = val
            lp.solverModel.passModel(m)
            ints = [k for k, v in enumerate(cols) if v.cat == pulp.LpInteger]
            if ints and self.mip:
                for k in ints:
                    lp.solverModel.changeColIntegrality(k, highspy.HighsVarType.kInteger)
            self.build_s = time.perf_counter() - t0
            self.build_cpu_s = time.process_time() - c0

        def callSolver(self, lp):
            t0, c0 = time.perf_counter(), time.process_time()
            lp.solverModel.run()
            self.run_s = time.perf_counter() - t0
            self.run_cpu_s = time.process_time() - c0

        def findSolutionValues(self, lp):
            h = lp.solverModel
            status = h.getModelStatus()
            self.model_status = status
            sol = h.getSolution()
            cols, rows = self._cols, self._rows
            if sol.value_valid:
                for v, x in zip(cols, sol.col_value):
                    v.varValue = x
                for c, x in zip(rows, sol.row_value):
                    s = c.constant + x
                    c.slack = -s if c.sense == pulp.LpConstraintLE else s
            if sol.dual_valid:
                for v, d in zip(cols, sol.col_dual):
                    v.dj = d
                for c, d in zip(rows, sol.row_dual):
                    c.pi = d
            if status in _HIGHS_STATUS:
                return _HIGHS_STATUS[status]
            if sol.value_valid and status in (_S.kTimeLimit, _S.kIterationLimit, _S.kInterrupt):
                return pulp.LpStatusNotSolved, pulp.LpSolutionIntegerFeasible
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound

        def actualSolve(self, lp, **kwargs):
            self.createAndConfigureSolver(lp)
            self.buildSolverModel(lp)
            self.callSolver(lp)
            t0, c0 = time.perf_counter(), time.process_time()
            status, sol_status = self.findSolutionValues(lp)
            # reading values and duals back into the PuLP objects counts as solve time
            self.run_s += time.perf_counter() - t0
            self.run_cpu_s += time.process_time() - c0
            lp.assignStatus(status, sol_status)
            return status
else:  # pragma: no cover
    BulkHiGHS = None


def cbc_solver(method: str, time_limit: float):
    """CBC (CLP for LPs) through COIN_CMD, using the binary bundled with PuLP when present."""
    path = None
    cls = getattr(pulp, "PULP_CBC_CMD", None)
    bundled = getattr(cls, "pulp_cbc_path", None) if cls is not None else None
    if bundled and os.path.exists(bundled) and os.access(bundled, os.X_OK):
        path = bundled
    options = ["barrier"] if method == "ipm" else []
    solver = pulp.COIN_CMD(path=path, mip=False, msg=False, timeLimit=time_limit, options=options)
    return solver if solver.available() else None


def cbc_unconstrained_problem(prob, lay: Layout, cols, rows):
    """A second PuLP problem without capacity rows or overtime columns (CBC cannot warm-start)."""
    p2 = pulp.LpProblem("sop_balance_unconstrained", pulp.LpMinimize)
    o0, o1 = lay.blocks["O"]
    ot = {id(v) for v in cols[o0:o1]}
    p2.setObjective(pulp.LpAffineExpression(((v, c) for v, c in prob.objective.items() if id(v) not in ot),
                                            constant=prob.objective.constant))
    c0, c1 = lay.row_blocks["capacity"]
    p2.extend({c.name: c for k, c in enumerate(rows) if not (c0 <= k < c1)})
    return p2
