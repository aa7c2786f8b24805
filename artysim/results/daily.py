"""Per-day statistics derived from the mergeable integer counts and sums (histograms, sums, counts of
short runs), the same way whether they come from one run, a merge of shards or a lazy combination."""

from __future__ import annotations

import numpy as np

from artysim.core import bins
from artysim.results import schema


def derive_daily(stats: dict, qs: np.ndarray, n_runs: int) -> dict:
    """Per-day quantiles, means and probabilities from the mergeable counts and sums."""
    out = {}
    for n in schema.DAILY_NAMES:
        out[f"{n}_quantile"] = bins.quantiles_from_counts(stats[f"{n}_hist"], qs)
        out[f"{n}_mean"] = stats[f"{n}_sum"] / max(n_runs, 1)
    out["p_short"] = stats["n_short"] / max(n_runs, 1)
    out["p_depleted"] = np.cumsum(stats["n_first_short"]) / max(n_runs, 1)
    for n in ("fired_by_source", "effective_by_source", "stock_by_source", "arrivals_by_source"):
        out[f"{n}_mean"] = stats[f"{n}_sum"] / max(n_runs, 1)
    out["stock_by_source_quantile"] = bins.quantiles_from_counts(stats["stock_by_source_hist"], qs)
    out["days_on_hand_quantile"] = bins.quantiles_from_counts(stats["days_on_hand_hist"], qs) / 100.0
    return out


def mergeable(daily) -> dict:
    """The mergeable variables (``schema.MERGEABLE``) of an accumulator (``core.engine.Daily``), by name."""
    return ({f"{n}_hist": daily.hist[:, j, :] for j, n in enumerate(schema.DAILY_NAMES)}
            | {f"{n}_sum": daily.sums[:, j] for j, n in enumerate(schema.DAILY_NAMES)}
            | {"n_short": daily.n_short, "n_first_short": daily.n_first_short,
               "fired_by_source_sum": daily.src_sums[:, 0, :], "effective_by_source_sum": daily.src_sums[:, 1, :],
               "stock_by_source_hist": daily.src_hist, "stock_by_source_sum": daily.src_day[:, 0, :],
               "arrivals_by_source_sum": daily.src_day[:, 1, :], "days_on_hand_hist": daily.doh_hist})
