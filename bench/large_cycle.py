"""Large input through the full headless cycle: N finished goods x 36 months of history.

    python bench/large_cycle.py [--items 5000] [--steps forecast,balance,cost_rollup,financials,exceptions]

Prints the time of each phase and the peak memory (RSS) of the process, next to a baseline measured
in the same run: opening and saving the same workbook with openpyxl and nothing else.
Target (issue Reliability): 5,000 items x 36 months, peak RSS <= 4 GB.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sop_xl.workbook import open_file  # noqa: E402
from sop_xl.demo.company import FAMILIES, make_demo  # noqa: E402
from sop_xl.demo.workbook import fill_workbook  # noqa: E402
from sop_xl.plan.pipeline import STEP_ORDER, run  # noqa: E402
from sop_xl.template.builder import template_path  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # Linux: KiB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=5000, help="finished goods (split over the families)")
    ap.add_argument("--steps", default=",".join(STEP_ORDER))
    args = ap.parse_args()
    per_family = max(1, args.items // len(FAMILIES))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.xlsm"
        t0 = time.perf_counter()
        frames, settings = make_demo(seed=11, items_per_family=per_family)
        path.write_bytes(template_path().read_bytes())
        with open_file(path) as book:
            fill_workbook(book, frames, settings)
            book.save()
        t_fill = time.perf_counter() - t0
        n_hist = len(frames["tblActuals"])
        print(f"workbook: {per_family * len(FAMILIES)} finished goods, {n_hist:,} history rows, "
              f"{path.stat().st_size / 1e6:.1f} MB; generated and written in {t_fill:.1f} s", flush=True)

        t0 = time.perf_counter()
        with open_file(path) as book:
            book.save()
        t_base = time.perf_counter() - t0
        print(f"baseline (openpyxl open + save, no planning): {t_base:.1f} s", flush=True)

        t0 = time.perf_counter()
        with open_file(path, progress=lambda s: print(f"  [{time.perf_counter() - t0:7.1f} s] {s}",
                                                       flush=True)) as book:
            report = run(book, args.steps.split(","))
            book.save()
        t_cycle = time.perf_counter() - t0
    print()
    for line in report.summary:
        print(f"  {line}")
    print(f"full cycle ({', '.join(report.steps)}): {t_cycle:.1f} s = {t_cycle / t_base:.1f}x the baseline")
    print(f"peak RSS: {peak_rss_gb():.2f} GB (target <= 4 GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
