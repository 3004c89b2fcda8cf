"""Solving the one LP (lp.LP): highspy directly, PuLP for the CBC fallback and for model files.

Main path: the column-wise arrays go to ``highspy.Highs.passModel`` in one ``HighsLp``; values,
row duals (``getSolution().row_dual``) and, for a MIP, the gap reached come back from the public
highspy API; the same ``Highs`` object is kept so a second solve (unlimited capacity) starts from
the first one's basis.

PuLP's role: a ``pulp.LpProblem`` generated from the same arrays, solved by CBC when HiGHS is
missing or fails, and written as .lp / .mps so a planner (or support) can open the exact model in
any solver.  Nothing here subclasses PuLP's solver classes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pulp

from sop_xl.engine.balance.lp import LP

try:  # highspy is optional at runtime: fall back to CBC when it is missing
    import highspy  # type: ignore

    HIGHS_OK = True
except Exception:  # pragma: no cover - depends on the installation
    highspy = None
    HIGHS_OK = False


def _swallow_highs_banner() -> None:
    """HiGHS prints a copyright banner to the process's stdout the first time a solver is made; in
    Excel (RunPython) and in the CLI's summary that is noise. Make the first one with stdout muted."""
    if highspy is None:
        return
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


@dataclass
class Solution:
    """What a solver returned, in the LP's column and row order."""
    ok: bool = False  # an optimal (LP) or within-gap / time-limited feasible (MIP) point
    status: str = "not solved"  # 'optimal', or a plain explanation
    x: np.ndarray | None = None
    row_dual: np.ndarray | None = None  # d objective / d row bound (None for a MIP)
    col_dual: np.ndarray | None = None  # reduced costs
    objective: float = float("nan")
    gap: float = float("nan")  # MIP relative gap reached; NaN for an LP
    bound: float = float("nan")  # MIP dual bound (the objective for an LP): what a gap is measured against
    pd_gap: float = float("nan")  # PDLP only: relative gap between its primal and dual objectives
    iterations: int = 0  # simplex (or PDLP) iterations (HiGHS; 0 when unknown)
    timings: dict = field(default_factory=dict)


def status_text(kind: str, time_limit: float, raw: str = "") -> str:
    if kind == "infeasible":
        return ("infeasible: the solver found no plan that satisfies the inventory limits; "
                "check max_inventory against initial inventory")
    if kind == "unbounded":
        return "unbounded: some cost is negative so the solver can make the cost arbitrarily low"
    if kind == "time":
        return f"time limit of {time_limit:g} s reached before an optimal plan was found"
    return f"solver stopped without an optimal plan ({raw})"


# ----------------------------------------------------------------------------- HiGHS
METHODS = ("auto", "simplex", "ipm", "pdlp")


def choose_method(method: str | None, ncols: int) -> str:
    """The HiGHS method for an LP (or one independent group of it) of ``ncols`` columns.

    "auto" is dual simplex at every size measured: on this LP interior point (IPX + crossover) was
    slower everywhere -- 65k columns simplex ~2 s vs IPX 4-5 s, 323k columns 24 vs 44 s (CPU, HiGHS
    1.16) and at 30k items (~2.7M columns) 1.7x slower (issue 16).  The former switch to IPX above
    1.5M columns was an extrapolation that the 30k measurement refuted.  After the decomposition
    (decompose.py) each group is solved with this choice on its own size.  "ipm" and "pdlp" (HiGHS's
    first-order solver: no basis, optimal to a tolerance, its gap reported) are explicit choices.
    """
    m = (method or "auto").lower()
    return m if m in METHODS[1:] else "simplex"


def highs_method_options(method: str, mip: bool = False) -> dict:
    if mip:  # branch and bound needs presolve; its LPs are solved by dual simplex anyway
        return {}
    if method == "ipm":
        # crossover gives a basic solution: clean vertex values and duals (shadow prices)
        return {"solver": "ipm", "run_crossover": "on"}
    if method == "pdlp":
        return {"solver": "pdlp"}
    # Presolve removes ~3 % of this LP's rows and columns and costs more than it saves: switching it
    # off was ~20 % faster at 1,000 and 5,000 items with the same objective and duals (measured).
    return {"solver": "simplex", "presolve": "off"}


def highs_lp(lp: LP):
    """The LP as a ``highspy.HighsLp`` (column-wise matrix, infinities as kHighsInf)."""
    inf = highspy.kHighsInf
    m = highspy.HighsLp()
    m.num_col_ = lp.ncols
    m.num_row_ = lp.nrows
    m.col_cost_ = lp.cost
    m.offset_ = lp.offset
    m.col_lower_ = np.where(np.isinf(lp.col_lo), -inf, lp.col_lo)
    m.col_upper_ = np.where(np.isinf(lp.col_hi), inf, lp.col_hi)
    m.row_lower_ = np.where(np.isinf(lp.row_lo), -inf, lp.row_lo)
    m.row_upper_ = np.where(np.isinf(lp.row_hi), inf, lp.row_hi)
    m.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    m.a_matrix_.start_ = lp.start.astype(np.int32)
    m.a_matrix_.index_ = lp.index
    m.a_matrix_.value_ = lp.value
    if lp.is_mip:
        m.integrality_ = [highspy.HighsVarType.kInteger if f else highspy.HighsVarType.kContinuous
                          for f in lp.integer]
    return m


class HighsSolver:
    """One ``highspy.Highs`` holding the model: solve, then re-solve after bound changes (warm)."""

    def __init__(self, lp: LP, options: dict, time_limit: float, mip_gap: float | None = None):
        t0, c0 = time.perf_counter(), time.process_time()
        self.lp = lp
        self.time_limit = float(time_limit)
        self.h = h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.passModel(highs_lp(lp))
        for k, v in options.items():
            h.setOptionValue(k, v)
        h.setOptionValue("time_limit", self.time_limit)
        if mip_gap is not None:
            h.setOptionValue("mip_rel_gap", float(mip_gap))
        self.load_s = time.perf_counter() - t0
        self.load_cpu_s = time.process_time() - c0

    def run(self) -> Solution:
        h = self.h
        # HiGHS checks time_limit against the Highs object's total run time: give each run its own
        h.setOptionValue("time_limit", h.getRunTime() + self.time_limit)
        t0, c0 = time.perf_counter(), time.process_time()
        h.run()
        out = Solution(timings={"solve_s": time.perf_counter() - t0, "solve_cpu_s": time.process_time() - c0})
        st = h.getModelStatus()
        S = highspy.HighsModelStatus
        sol = h.getSolution()
        info = h.getInfo()
        pdlp_its = int(max(getattr(info, "pdlp_iteration_count", 0), 0))  # highspy >= 1.7
        out.iterations = int(max(info.simplex_iteration_count, 0)) + pdlp_its
        if self.lp.is_mip:
            out.gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else float("nan")
            out.bound = float(info.mip_dual_bound)
        if pdlp_its > 0:  # a first-order solve: optimal only to its tolerance
            out.pd_gap = float(getattr(info, "primal_dual_objective_error", float("nan")))
        feasible = bool(sol.value_valid) and (not self.lp.is_mip or info.primal_solution_status == 2)
        if feasible:
            out.x = np.asarray(sol.col_value, dtype=float)
        if st == S.kOptimal and feasible:
            out.ok, out.status = True, "optimal"
        elif st in (S.kInfeasible,):
            out.status = status_text("infeasible", self.time_limit)
        elif st in (S.kUnbounded, S.kUnboundedOrInfeasible):
            out.status = status_text("unbounded", self.time_limit)
        elif st == S.kIterationLimit:
            out.status = "iteration limit reached"
        elif st == S.kTimeLimit:
            out.status = status_text("time", self.time_limit)
            if self.lp.is_mip and feasible:  # a MIP stopped by the clock still has a plan and a gap
                out.ok = True
        else:
            out.status = status_text("other", self.time_limit, h.modelStatusToString(st))
        if out.ok:
            out.objective = float(info.objective_function_value)
            if not self.lp.is_mip:
                out.bound = out.objective
            if sol.dual_valid and not self.lp.is_mip:
                out.row_dual = np.asarray(sol.row_dual, dtype=float)
                out.col_dual = np.asarray(sol.col_dual, dtype=float)
        return out

    def set_row_bounds(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        if len(rows):
            inf = highspy.kHighsInf
            self.h.changeRowsBounds(len(rows), rows.astype(np.int32), np.where(np.isinf(lo), -inf, lo),
                                    np.where(np.isinf(hi), inf, hi))

    def set_col_bounds(self, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        if len(cols):
            inf = highspy.kHighsInf
            self.h.changeColsBounds(len(cols), cols.astype(np.int32), np.where(np.isinf(lo), -inf, lo),
                                    np.where(np.isinf(hi), inf, hi))

    def set_option(self, key: str, value) -> None:
        self.h.setOptionValue(key, value)

    def basis(self):
        """The current simplex basis (a copy), to warm-start a later solve of a same-shaped LP."""
        b = self.h.getBasis()
        return b if b.valid else None

    def set_basis(self, basis) -> bool:
        """Start from a basis of an earlier plan (same rows and columns); False if HiGHS refuses it."""
        if basis is None or len(basis.col_status) != self.lp.ncols or len(basis.row_status) != self.lp.nrows:
            return False
        ok = self.h.setBasis(basis) == highspy.HighsStatus.kOk
        if ok:
            self.h.setOptionValue("solver", "simplex")  # a basis is only used by the simplex
        return ok

    def close(self) -> None:
        self.h = None

    def drop_integrality(self) -> None:
        """Make the model its LP relaxation (for shadow prices and explanations after a MIP)."""
        cols = np.flatnonzero(self.lp.integer) if self.lp.integer is not None else np.zeros(0, dtype=int)
        if len(cols):
            self.h.changeColsIntegrality(len(cols), cols.astype(np.int32),
                                         np.array([highspy.HighsVarType.kContinuous] * len(cols)))
            self.lp = replace(self.lp, integer=None)
            self.h.setOptionValue("solver", "simplex")


# ----------------------------------------------------------------------------- PuLP
def pulp_problem(lp: LP, name: str = "sop_balance"):
    """A PuLP problem generated from the LP's arrays; returns (problem, variables, constraints-by-row).

    Ranged rows (both bounds finite and different) become two PuLP constraints; free rows none, so
    the constraint list is keyed by LP row (None where a row has no constraint, a tuple for ranged)."""
    prob = pulp.LpProblem(name, pulp.LpMinimize)
    names = lp.col_names()
    lo = [None if not np.isfinite(v) else float(v) for v in lp.col_lo]
    hi = [None if not np.isfinite(v) else float(v) for v in lp.col_hi]
    integer = lp.integer if lp.integer is not None else np.zeros(lp.ncols, dtype=bool)
    add = prob.add_variable
    cols = [add(nm, a, b, pulp.LpInteger if f else pulp.LpContinuous)
            for nm, a, b, f in zip(names, lo, hi, integer.tolist())]
    nz = np.flatnonzero(lp.cost)
    terms = list(zip([cols[k] for k in nz.tolist()], lp.cost[nz].tolist()))
    if lp.offset:  # PuLP's .lp/.mps writers drop an objective constant: carry it on a column fixed at 1
        terms.append((add("objective_constant", 1.0, 1.0), lp.offset))
    prob.setObjective(pulp.LpAffineExpression(terms))
    rstart, rcol, rval = lp.rows_csr()
    rstart, rcol, rval = rstart.tolist(), rcol.tolist(), rval.tolist()
    rnames = lp.row_names()
    Aff, Con = pulp.LpAffineExpression, pulp.LpConstraint
    by_row: list = [None] * lp.nrows
    named: dict = {}
    for r in range(lp.nrows):
        a, b = float(lp.row_lo[r]), float(lp.row_hi[r])
        s, e = rstart[r], rstart[r + 1]

        def expr():
            return Aff(zip([cols[k] for k in rcol[s:e]], rval[s:e]))

        if np.isfinite(a) and a == b:
            c = Con(expr(), pulp.LpConstraintEQ, rnames[r], a)
        elif np.isfinite(a) and np.isfinite(b):
            c = (Con(expr(), pulp.LpConstraintGE, rnames[r] + "_lo", a),
                 Con(expr(), pulp.LpConstraintLE, rnames[r] + "_hi", b))
        elif np.isfinite(a):
            c = Con(expr(), pulp.LpConstraintGE, rnames[r], a)
        elif np.isfinite(b):
            c = Con(expr(), pulp.LpConstraintLE, rnames[r], b)
        else:
            continue
        by_row[r] = c
        for x in (c if isinstance(c, tuple) else (c,)):
            named[x.name] = x
    prob.extend(named)
    return prob, cols, by_row


def write_model(lp: LP, path: str) -> str:
    """Write the model for inspection: '.mps' as MPS, anything else as CPLEX LP format (PuLP's writers)."""
    prob, _, _ = pulp_problem(lp)
    path = os.fspath(path)
    if path.lower().endswith(".mps"):
        prob.writeMPS(path)
    else:
        prob.writeLP(path)
    return path


def cbc_solver(method: str, time_limit: float, mip: bool = False, gap: float | None = None):
    """CBC (CLP for LPs) through COIN_CMD, using the binary bundled with PuLP when present."""
    path = None
    cls = getattr(pulp, "PULP_CBC_CMD", None)
    bundled = getattr(cls, "pulp_cbc_path", None) if cls is not None else None
    if bundled and os.path.exists(bundled) and os.access(bundled, os.X_OK):
        path = bundled
    options = ["barrier"] if method == "ipm" and not mip else []
    solver = pulp.COIN_CMD(path=path, mip=mip, msg=False, timeLimit=time_limit, options=options, gapRel=gap)
    return solver if solver.available() else None


def solve_cbc(lp: LP, method: str, time_limit: float, gap: float | None = None) -> Solution:
    """Solve the LP's PuLP twin with CBC; duals read back per LP row (ranged rows: the binding side)."""
    solver = cbc_solver(method, time_limit, mip=lp.is_mip, gap=gap)
    if solver is None:
        return Solution(status="no LP solver available: neither HiGHS (highspy) nor CBC could be started")
    t0, c0 = time.perf_counter(), time.process_time()
    prob, cols, by_row = pulp_problem(lp)
    try:
        st = prob.solve(solver)
    except pulp.PulpSolverError as e:
        return Solution(status=f"CBC failed: {e}")
    out = Solution(timings={"solve_s": time.perf_counter() - t0, "solve_cpu_s": time.process_time() - c0})
    if st != pulp.LpStatusOptimal:
        kind = {pulp.LpStatusInfeasible: "infeasible", pulp.LpStatusUnbounded: "unbounded"}.get(st, "other")
        out.status = status_text(kind, time_limit, pulp.LpStatus.get(st, str(st)))
        return out
    out.ok, out.status = True, "optimal"
    out.x = np.array([v.varValue or 0.0 for v in cols], dtype=float)
    out.objective = lp.objective_value(out.x)
    if not lp.is_mip:
        d = np.zeros(lp.nrows)
        for r, c in enumerate(by_row):
            if c is None:
                continue
            if isinstance(c, tuple):
                d[r] = sum((x.pi or 0.0) for x in c)
            else:
                d[r] = c.pi or 0.0
        out.row_dual = d
        out.col_dual = np.array([v.dj or 0.0 for v in cols], dtype=float)
    return out


class CbcSession:
    """The HighsSolver interface over CBC: bound changes go to a copy of the LP, each run is a fresh
    CBC solve of its PuLP twin (CBC cannot warm-start)."""

    def __init__(self, lp: LP, method: str, time_limit: float, mip_gap: float | None = None):
        self.lp = replace(lp, col_lo=lp.col_lo.copy(), col_hi=lp.col_hi.copy(), row_lo=lp.row_lo.copy(),
                          row_hi=lp.row_hi.copy())
        self.method, self.time_limit, self.gap = method, float(time_limit), mip_gap
        self.load_s = self.load_cpu_s = 0.0

    def run(self) -> Solution:
        return solve_cbc(self.lp, self.method, self.time_limit, self.gap)

    def set_row_bounds(self, rows, lo, hi) -> None:
        self.lp.row_lo[rows], self.lp.row_hi[rows] = lo, hi

    def set_col_bounds(self, cols, lo, hi) -> None:
        self.lp.col_lo[cols], self.lp.col_hi[cols] = lo, hi

    def set_option(self, key: str, value) -> None:  # nothing to tune between CBC runs
        pass

    def drop_integrality(self) -> None:
        self.lp = replace(self.lp, integer=None)

    def basis(self):  # CBC runs cannot be warm-started
        return None

    def set_basis(self, basis) -> bool:
        return False

    def close(self) -> None:
        pass
