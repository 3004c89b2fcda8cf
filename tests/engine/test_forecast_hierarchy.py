"""Coherent families: item forecasts reconciled with family and total forecasts (hierarchy.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.forecast import ForecastResult, forecast
from sop_xl.engine.forecast.hierarchy import TOTAL, forecast_families, reconcile, reconciled, structure

FAMILIES = {"A1": "Alpha", "A2": "Alpha", "A3": "Alpha", "B1": "Beta", "B2": "Beta", "B3": "Beta"}


def _history(months: int = 48, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-01", periods=months, freq="MS")
    season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(months) / 12)
    rows = []
    for i, item in enumerate(FAMILIES):
        level = 50 + 40 * i
        y = rng.poisson(level * season * (1 + 0.004 * i * np.arange(months)))
        if item == "B3":  # an intermittent item joins the families too
            y = rng.poisson(0.4, months) * rng.integers(5, 15, months)
        rows.append(pd.DataFrame({"unique_id": item, "ds": ds, "y": y.astype(float)}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def hist():
    return _history()


@pytest.fixture(scope="module")
def base(hist):
    """forecast() of every series of the hierarchy, once for all methods."""
    Y_df, S_df, tags, bottom = structure(hist, FAMILIES)
    return Y_df, S_df, tags, bottom, forecast(Y_df, 12)


def _family_sums(items: pd.DataFrame) -> pd.Series:
    return items.assign(family=items["unique_id"].map(FAMILIES)).groupby(["family", "ds"])["yhat"].sum()


@pytest.mark.parametrize("method", ["ols", "wls_struct", "mint_shrink"])
def test_the_librarys_reconciled_forecasts_add_up_and_differ_from_the_base(base, method):
    Y_df, S_df, tags, bottom, res = base
    rec = reconcile(res.forecasts, S_df, tags, method, res.holdout).set_index(["unique_id", "ds"])["yhat"]
    items = rec[rec.index.get_level_values(0).isin(bottom)]
    fam = items.groupby([items.index.get_level_values(0).map(lambda b: b.split("/")[1]),
                         items.index.get_level_values(1)]).sum()
    for f in ("Alpha", "Beta"):
        agg = rec.loc[f"{TOTAL}/{f}"]
        np.testing.assert_allclose(fam.loc[f].to_numpy(), agg.to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(items.groupby(level=1).sum().to_numpy(), rec.loc[TOTAL].to_numpy(), rtol=1e-9,
                               atol=1e-9)
    own = res.forecasts.set_index(["unique_id", "ds"])["yhat"]
    assert np.abs(rec - own.reindex(rec.index)).max() > 1e-3  # reconciliation changed something


def test_ols_is_the_projection_onto_the_coherent_forecasts(base):
    """Independent check of the wiring (ids, S, columns): OLS reconciliation is S (S'S)^-1 S' ŷ."""
    Y_df, S_df, tags, bottom, res = base
    S = S_df.set_index("unique_id")
    ids = list(S.index)
    Smat = S.to_numpy(float)
    yhat = res.forecasts.pivot(index="unique_id", columns="ds", values="yhat").loc[ids].to_numpy()
    expected = Smat @ np.linalg.solve(Smat.T @ Smat, Smat.T @ yhat)
    got = (reconcile(res.forecasts, S_df, tags, "ols").pivot(index="unique_id", columns="ds", values="yhat")
           .loc[ids].to_numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("method", ["ols", "mint_shrink"])
def test_items_and_reported_families_are_coherent_and_non_negative(hist, base, method):
    Y_df, S_df, tags, bottom, res = base
    out = reconciled(res, Y_df, S_df, tags, bottom, method, list(FAMILIES))
    fc = out.forecasts
    assert list(fc["unique_id"].unique()) == list(FAMILIES)  # item ids back, in the caller's order
    assert (fc["yhat"] >= 0).all()
    agg = out.aggregates.set_index(["level", "unique_id", "ds"])["yhat"].sort_index()
    fam = _family_sums(fc)
    for f in ("Alpha", "Beta"):
        np.testing.assert_allclose(fam.loc[f].to_numpy(), agg.loc[("family", f)].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(fc.groupby("ds")["yhat"].sum().to_numpy(), agg.loc[("total", TOTAL)].to_numpy(),
                               rtol=1e-9)
    # intervals moved with the point forecast: still around it
    assert (fc["lo_80"] <= fc["yhat"] + 1e-9).all() and (fc["hi_80"] >= fc["yhat"] - 1e-9).all()
    assert out.selection["note"].str.contains(f"reconciled with family .* \\({method}\\)").all()
    assert set(out.accuracy["unique_id"]) == set(FAMILIES)


def test_bottom_up_leaves_each_items_own_forecast(hist):
    own = forecast(hist, 12).forecasts.set_index(["unique_id", "ds"])["yhat"]
    bu = forecast_families(hist, FAMILIES, 12, method="bottom_up").forecasts.set_index(["unique_id", "ds"])["yhat"]
    np.testing.assert_allclose(bu.reindex(own.index).to_numpy(), own.to_numpy(), rtol=1e-9)


def test_none_is_the_plain_forecast(hist):
    own = forecast(hist, 6).forecasts
    none = forecast_families(hist, FAMILIES, 6, method="none").forecasts
    pd.testing.assert_frame_equal(own, none)


def test_negative_reconciled_items_are_set_to_zero_and_the_families_re_summed():
    """A family forecast far below its items' sum pulls a small item below zero under OLS."""
    ds = pd.date_range("2024-01-01", periods=3, freq="MS")
    hist = pd.DataFrame({"unique_id": np.repeat(["big", "small"], 12), "ds": np.tile(
        pd.date_range("2023-01-01", periods=12, freq="MS"), 2), "y": 1.0})
    fams = {"big": "F", "small": "F"}
    Y_df, S_df, tags, bottom = structure(hist, fams)
    level = {"Total": 20.0, "Total/F": 20.0, "Total/F/big": 100.0, "Total/F/small": 1.0}
    fc = pd.DataFrame([(u, d, "x", v, v - 1, v + 1) for u, v in level.items() for d in ds],
                      columns=["unique_id", "ds", "model", "yhat", "lo_80", "hi_80"])
    sel = pd.DataFrame({"unique_id": list(level), "demand_class": "smooth", "model": "x", "n_obs": 12,
                        "note": "n", "cleaned": ""})
    acc = pd.DataFrame({"unique_id": list(level), "model": "x"})
    out = reconciled(ForecastResult(fc, sel, acc, holdout=None), Y_df, S_df, tags, bottom, "ols", ["big", "small"])
    small = out.forecasts[out.forecasts["unique_id"] == "small"]
    assert (small["yhat"] == 0).all() and (small["lo_80"] >= 0).all()
    assert any("negative item-month forecast" in w for w in out.warnings)
    agg = out.aggregates.set_index(["level", "ds"])["yhat"]
    np.testing.assert_allclose(agg.loc["family"].to_numpy(),
                               out.forecasts.groupby("ds")["yhat"].sum().to_numpy(), rtol=1e-12)


def test_mint_shrink_without_holdout_errors_falls_back_and_says_so():
    short = _history(months=9)  # 9 months: too short for any holdout
    out = forecast_families(short, FAMILIES, 6, method="mint_shrink")
    assert any("wls_struct used instead of mint_shrink" in w for w in out.warnings)
    assert out.selection["note"].str.contains(r"\(wls_struct\)").all()


def test_an_item_ending_early_counts_as_zero_since_and_every_item_is_forecast(hist):
    cut = hist[~((hist["unique_id"] == "A2") & (hist["ds"] >= "2024-07-01"))]
    Y_df, _, _, bottom = structure(cut, FAMILIES)
    a2 = Y_df[Y_df["unique_id"] == "Total/Alpha/A2"]
    assert a2["ds"].max() == hist["ds"].max() and (a2.loc[a2["ds"] >= "2024-07-01", "y"] == 0).all()
    out = forecast_families(cut, FAMILIES, 3, method="ols")
    assert out.forecasts.groupby("unique_id")["ds"].min().nunique() == 1


def test_unknown_method_is_refused(hist):
    with pytest.raises(ValueError, match="unknown reconciliation 'mint'"):
        forecast_families(hist, FAMILIES, 3, method="mint")


def test_promotion_months_are_left_out_of_the_items_fits(hist):
    months = pd.to_datetime(["2023-03-01", "2023-04-01"])
    out = forecast_families(hist, FAMILIES, 3, method="ols",
                            exclude=pd.DataFrame({"unique_id": "A2", "ds": months}))
    cleaned = out.selection.set_index("unique_id")["cleaned"]
    assert all(f"{d:%Y-%m}:" in cleaned["A2"] for d in months) and "(promotion)" in cleaned["A2"]
    assert not cleaned.drop("A2").str.contains("promotion").any()


def test_a_failing_reconciliation_keeps_the_items_own_forecasts_and_says_why(base, monkeypatch):
    from sop_xl.engine.forecast import hierarchy

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(hierarchy, "reconcile", singular)
    Y_df, S_df, tags, bottom, res = base
    out = reconciled(res, Y_df, S_df, tags, bottom, "ols", list(FAMILIES))
    assert any("reconciliation (ols) failed (LinAlgError: Singular matrix)" in w for w in out.warnings)
    own = res.forecasts[res.forecasts["unique_id"].isin(bottom)].assign(unique_id=lambda d: d["unique_id"].map(bottom))
    pd.testing.assert_series_equal(out.forecasts.set_index(["unique_id", "ds"])["yhat"].sort_index(),
                                   own.set_index(["unique_id", "ds"])["yhat"].sort_index())


def test_a_promotion_is_left_out_of_the_family_and_total_fits_too(hist):
    from sop_xl.engine.forecast import hierarchy

    months = pd.to_datetime(["2023-03-01", "2023-04-01"])
    spiked = hist.copy()
    hit = (spiked["unique_id"] == "A2") & spiked["ds"].isin(months)
    spiked.loc[hit, "y"] += 5000.0  # a promotion far above anything regular
    exclude = pd.DataFrame({"unique_id": "A2", "ds": months})
    Y_df, S_df, tags, bottom = structure(spiked, FAMILIES)
    Y_reg = hierarchy._regular_aggregates(spiked, FAMILIES, exclude, Y_df, bottom, "MS", 12).set_index(
        ["unique_id", "ds"])["y"]
    raw = Y_df.set_index(["unique_id", "ds"])["y"]
    for agg in (f"{TOTAL}/Alpha", TOTAL):
        at = raw.loc[agg].index.isin(months)
        assert (raw.loc[agg][at] - Y_reg.loc[agg][at] > 4000).all()  # the spike is gone from the aggregate
        pd.testing.assert_series_equal(raw.loc[agg][~at], Y_reg.loc[agg][~at])  # the rest is as summed
    a2 = f"{TOTAL}/Alpha/A2"
    pd.testing.assert_series_equal(raw.loc[a2], Y_reg.loc[a2])  # the item keeps its raw series
    assert (Y_reg.loc[f"{TOTAL}/Beta"] == raw.loc[f"{TOTAL}/Beta"]).all()
