"""``run --until RULE``: runs in doubling batches until a precision rule holds, then the file a plain run
of that many runs would write.

Looks happen at N0, 2 N0, 4 N0, ... runs (N0 = ``--runs``, default 1,000), each on all runs so far. Why
doubling: the rule is evaluated on a noisy estimate of the standard error, and stopping the first time a
noisy estimate crosses a threshold favours the looks where it happened to be low (optimistic bias). With
doubling there are only log2(N / N0) + 1 looks, so that selection effect is bounded by a handful of looks,
each on at least as many runs again as all the looks before it, instead of one look per batch; and the run
count overshoots the one needed by at most a factor of two.

Because run i depends only on (scenario, seed, i), the runs [0, N) simulated for the looks are the first N
runs of any larger run, and the file written at the end is exactly ``run --runs N_final`` (variable by
variable), with the rule and the stopping point in its attributes (``until_*``). The looks keep only the
columns the rule needs; the file is written by a plain run of N_final runs afterwards, so ``--until`` costs
about twice the simulation of a plain run of N_final runs (the looks' runs add up to N_final).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from artysim.analysis import statistics as stats_mod
from artysim.core import engine
from artysim.errors import ArtysimError
from artysim.jobs import resources
from artysim.jobs import run as runner
from artysim.model.load import Loaded
from artysim.results.atomic import check_target

FIRST_RUNS = 1000
MAX_RUNS = 1_000_000


def simulate_columns(model, seed: int, run_start: int, run_stop: int, needs: set, threads: int | None = None,
                     batch_size: int = 1 << 17) -> dict:
    """The per-run columns ``needs`` of runs [run_start, run_stop), simulated in memory (nothing else kept)."""
    daily = engine.Daily.empty(model.horizon, model.n_sample, len(model.kinds))
    bs = runner.batch_size_for(model.horizon, engine.resolve_threads(threads), batch_size)
    names = model.scenario.source_names()
    parts = [stats_mod.columns_from_batches([b], needs, names)
             for b in engine.run_batches(model, seed, run_start, run_stop, daily, threads, bs)]
    return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in needs}


def precision_rule(text: str, ctx: stats_mod.Context, option: str = "--until") -> stats_mod.Rule:
    """A rule on a standard error or half-width that more runs can meet (``se(EXPR) <= X``)."""
    rule = stats_mod.parse_rule(text, ctx, option)
    if not isinstance(rule.expr, stats_mod.SeOf) or not rule.upper:
        raise stats_mod.ExpressionError(
            f"{option} {text!r}: expected a precision rule, se(EXPR) <= X or halfwidth(EXPR) <= X; stopping when "
            "an estimate itself crosses a threshold is a biased test, not a precision")
    return rule


def run_until(loaded: Loaded, rule_text: str, *, first: int | None = None, max_runs: int | None = None,
              seed: int | None = None, output: str | Path | None = None, threads: int | None = None,
              force: bool = False, quiet: bool = False, resource_check: bool = True,
              note: Callable[[str], None] | None = None) -> tuple[Path, dict]:
    """Doubling looks until the rule holds or ``max_runs``; returns the file written and the search."""
    note = note or (lambda m: print(m, file=sys.stderr, flush=True))
    model = loaded.model
    rule = precision_rule(rule_text, stats_mod.Context.of_model(model))
    n_max = MAX_RUNS if max_runs is None else max_runs
    n0 = FIRST_RUNS if first is None else first
    if not 1 <= n_max <= runner.MAX_RUNS:
        raise ArtysimError(f"--max-runs must be in [1, {runner.MAX_RUNS:.0e}] (found {n_max})")
    n0 = min(n0, n_max)
    if n0 < 2:
        raise ArtysimError("--until needs at least 2 runs in the first look (a standard error of 1 run is unknown)")
    the_seed = loaded.scenario.run.seed if seed is None else seed
    out = Path(output) if output is not None else runner.default_output(loaded)
    check_target(out, force)  # before any work
    resources.check_magnitudes(model, n_max)
    needs = rule.expr.needs()
    cols: dict = {k: np.zeros(0) for k in needs}
    looks = []
    done, n = 0, n0
    while True:
        more = simulate_columns(model, the_seed, done, n, needs, threads)
        cols = {k: np.concatenate([cols[k], more[k]]) for k in needs}
        done = n
        v = rule.evaluate(stats_mod.ArrayColumns(cols))
        looks.append({"runs": n, "value": v.estimate.value})
        if not quiet:
            val = "n/a" if v.estimate.value is None else f"{v.estimate.value:.6g}"
            note(f"artysim: --until: {n:,} runs: {rule.expr.text} = {val}"
                 + (" (met)" if v.holds else f" (not yet {rule.op} {rule.threshold:g})"))
        if v.holds or n >= n_max:
            break
        n = min(2 * n, n_max)
    met = bool(v.holds)
    info = {"rule": rule_text, "met": met, "runs": done, "looks": looks}
    attrs = {"until_rule": rule_text, "until_met": int(met), "until_runs": done, "until_looks": len(looks),
             "until_value": float("nan") if v.estimate.value is None else float(v.estimate.value)}
    if out.parent and not out.parent.exists() and output is None:
        out.parent.mkdir(parents=True, exist_ok=True)
    path = runner.run_loaded(loaded, runs=done, seed=the_seed, output=out, threads=threads, force=force,
                             quiet=quiet, resource_check=resource_check, summary=not quiet, extra_attrs=attrs)
    return path, info


def sweep_until(scenario_path: str, vary_items: list[str], output: str | Path, rule_text: str, *,
                first: int | None = None, max_runs: int | None = None, seed: int | None = None,
                sets: list[str] | None = None, threads: int | None = None, force: bool = False, quiet: bool = False,
                resource_check: bool = True, on_variant=None,
                note: Callable[[str], None] | None = None) -> tuple[Path, dict]:
    """``sweep --until``: doubling looks at the rule on *every* variant (one run count for the whole sweep
    file), then the sweep a plain ``sweep --runs N_final`` writes."""
    from artysim.jobs import sweep as sweep_mod

    note = note or (lambda m: print(m, file=sys.stderr, flush=True))
    out = Path(output)
    check_target(out, force)
    variants = sweep_mod.plan(scenario_path, sweep_mod.parse_vary(list(vary_items)), list(sets or []))
    rule = precision_rule(rule_text, stats_mod.Context.of_model(variants[0].loaded.model))
    n_max = MAX_RUNS if max_runs is None else max_runs
    n = min(FIRST_RUNS if first is None else first, n_max)
    if n < 2:
        raise ArtysimError("--until needs at least 2 runs in the first look (a standard error of 1 run is unknown)")
    the_seed = variants[0].loaded.scenario.run.seed if seed is None else seed
    for v in variants:
        resources.check_magnitudes(v.loaded.model, n_max)
    needs = rule.expr.needs()
    cols = [{k: np.zeros(0) for k in needs} for _ in variants]
    done, looks = 0, []
    while True:
        worst, ok = None, True
        for j, v in enumerate(variants):
            more = simulate_columns(v.loaded.model, the_seed, done, n, needs, threads)
            cols[j] = {k: np.concatenate([cols[j][k], more[k]]) for k in needs}
            verdict = rule.evaluate(stats_mod.ArrayColumns(cols[j]))
            ok &= verdict.holds
            val = verdict.estimate.value
            if val is not None and (worst is None or val > worst[0]):
                worst = (val, v.label)
        done = n
        looks.append({"runs": n, "worst": None if worst is None else worst[0]})
        if not quiet:
            note(f"artysim: --until: {n:,} runs per variant: largest {rule.expr.text} = "
                 + ("n/a" if worst is None else f"{worst[0]:.6g} ({worst[1]})") + (" (met by every variant)" if ok
                                                                                  else ""))
        if ok or n >= n_max:
            break
        n = min(2 * n, n_max)
    path = sweep_mod.run_sweep(scenario_path, list(vary_items), out, runs=done, seed=the_seed, sets=sets,
                               threads=threads, force=force, quiet=quiet, on_variant=on_variant,
                               resource_check=resource_check)
    return path, {"rule": rule_text, "met": bool(ok), "runs": done, "looks": looks}
