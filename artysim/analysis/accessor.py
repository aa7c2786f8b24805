"""``ds.artysim``: the CLI's answers in a notebook, computed by the same functions, so both agree.

Registered on xarray Datasets when this module is imported (``import artysim`` arranges it once
xarray is imported). Plots and sensitivity live in their own modules and are imported only when used
(matplotlib and SALib are slow to import).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import xarray as xr

PLOT_KINDS = ("fan", "depletion", "sources", "histogram", "tornado", "sweep", "solve", "compare", "heatmap", "swing")


class _Plots:
    """``ds.artysim.plot.fan(**kw)`` etc. call ``artysim.analysis.plots.<kind>(ds, **kw)``."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def _call(self, kind: str, **kw: Any):
        plots = importlib.import_module("artysim.analysis.plots")
        return getattr(plots, kind)(self._ds, **kw)

    def fan(self, **kw: Any):
        """Stock over time: quantile bands, median and a few sample trajectories."""
        return self._call("fan", **kw)

    def depletion(self, **kw: Any):
        """Probability of being depleted (first shortage) by each date."""
        return self._call("depletion", **kw)

    def sources(self, **kw: Any):
        """Fired vs effective rounds by source."""
        return self._call("sources", **kw)

    def histogram(self, **kw: Any):
        """First shortage day, with the share never short within the horizon shown."""
        return self._call("histogram", **kw)

    def tornado(self, **kw: Any):
        """Which input uncertainties drive an outcome (rank correlations with CIs)."""
        return self._call("tornado", **kw)

    def sweep(self, **kw: Any):
        """An outcome against the varied value(s) of a sweep file."""
        return self._call("sweep", **kw)

    def solve(self, **kw: Any):
        """The search of a file written by ``artysim solve -o``: statistic against lever, threshold, answer."""
        return self._call("solve", **kw)

    def compare(self, against: xr.Dataset | str | Path, **kw: Any):
        """This dataset (A) against ``against`` (B, a dataset or a file): depletion curves and paired delay."""
        if isinstance(against, (str, Path)):
            from artysim.results.reader import open_results

            with open_results(against) as b:
                return self._call("compare", against=b.load(), **kw)
        return self._call("compare", against=against, **kw)

    def heatmap(self, **kw: Any):
        """A two-parameter sweep as a heat map of P(any shortage) (or ``outcome=``'s statistic)."""
        return self._call("heatmap", **kw)

    def swing(self, **kw: Any):
        """Tornado in outcome units (top- minus bottom-decile means), beside the correlation tornado."""
        return self._call("swing", **kw)


@xr.register_dataset_accessor("artysim")
class ArtysimAccessor:
    """Summary, paired comparison, sensitivity and plots of an artysim results dataset."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def summary(self) -> dict:
        """The same dict as ``artysim summary FILE --format json`` (NaN as None, pairs as lists)."""
        from artysim.analysis import summary
        from artysim.analysis.stats import jsonable

        return jsonable(summary.summarize(self._ds))

    def compare(self, other: xr.Dataset | str | Path) -> dict:
        """This dataset as A against ``other`` as B: the dict of ``artysim compare A B --format json``."""
        from artysim.analysis import compare
        from artysim.analysis.stats import jsonable

        if isinstance(other, (str, Path)):
            from artysim.results.reader import open_results

            with open_results(other) as b:
                return jsonable(compare.compare(self._ds, b))
        return jsonable(compare.compare(self._ds, other))

    def stats(self, *exprs: str, where: str | None = None) -> dict:
        """``{EXPR: {value, se, ci95}}``: the ``stats`` object of ``artysim summary --stat EXPR ... [--where C]``."""
        from artysim.analysis import statistics

        ds = self._ds if where is None else statistics.where(self._ds, where)[0]
        return {t: e.as_dict() for t, e in statistics.stats_of_dataset(ds, list(exprs)).items()}

    def where(self, condition: str) -> xr.Dataset:
        """The runs whose sampled parameters satisfy ``condition`` (as ``--where``)."""
        from artysim.analysis import statistics

        return statistics.where(self._ds, condition)[0]

    def sensitivity(self, **kw: Any):
        """``artysim.analysis.sensitivity.analyze(ds, **kw)``."""
        sensitivity = importlib.import_module("artysim.analysis.sensitivity")
        return sensitivity.analyze(self._ds, **kw)

    @property
    def plot(self) -> _Plots:
        return _Plots(self._ds)
