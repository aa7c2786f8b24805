"""``artysim solve``: the lever value that meets a target, under common random numbers.

Every evaluation runs the scenario with the lever set by an override (``PATH=value``, or with ``--scale``
the distribution or schedule at PATH multiplied as a whole) and the *same seed*: run i draws the same
random numbers at every lever value, so the statistic is a step function of the lever with no sampling
noise between evaluations, and bisection converges on it.

The search (the lever's orientation is found from the two ends of the range: the target must hold at one
end and fail at the other):

1. the answer: bisection of "the target holds" to ``--tol`` (integers: to 1), the smallest lever value that
   meets it when it holds at the top of the range, the largest when it holds at the bottom;
2. the Monte Carlo interval: two more bisections, of "the target holds for the optimistic end of the
   statistic's 95 % interval" and "... for the pessimistic end"; between them the 95 % interval straddles
   the threshold, so which side of it the lever lies on is not resolved by this many runs. An end that
   reaches the range's end is reported as that end with ``interval_open`` true.

Evaluations are cached by lever value and every bisection starts from the tightest bracket the cache
gives. The compiled kernel is reused by every evaluation (numba compiles once per process); the scenario
text is read once and re-validated with the override per evaluation (milliseconds); only the columns the
target needs are kept. The results file of the final evaluation is written at the end (``-o``).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artysim.analysis import statistics as stats_mod
from artysim.analysis.stats import Z95, jsonable
from artysim.errors import ArtysimError
from artysim.jobs import run as runner
from artysim.jobs import until as until_mod
from artysim.jobs.bundled import resolve
from artysim.jobs.until import precision_rule, simulate_columns
from artysim.model.load import Loaded, loads
from artysim.model.scenario import read_text
from artysim.results.atomic import check_target

#: numeric parameters of a distribution that are locations or scales: multiplying them all by a factor
#: multiplies the random variable by it (shape parameters such as sigma, concentration, weights are kept)
SCALE_KEYS = ("low", "high", "min", "mode", "max", "median", "mean", "sd", "value", "p95", "values")

SOLVE_VERSION = 1


class SolveError(ArtysimError):
    """A solve that cannot be set up or cannot succeed (one line)."""


# ----------------------------------------------------------------------------- the lever


def _find(doc: dict, path: str):
    """The value at a ``--set``-style path (``source.NAME.field``), or ``KeyError`` when absent."""
    keys = path.split(".")
    node, i = doc, 0
    while i < len(keys) - 1:
        k = keys[i]
        if k == "source" and isinstance(node.get("source"), list) and i + 1 < len(keys) - 1:
            match = [s for s in node["source"] if isinstance(s, dict) and s.get("name") == keys[i + 1]]
            if not match:
                names = [s.get("name") for s in node["source"] if isinstance(s, dict)]
                raise SolveError(f"--lever {path}: no source named '{keys[i + 1]}' (sources: {names})")
            node, i = match[0], i + 2
            continue
        if not isinstance(node, dict) or k not in node or not isinstance(node[k], dict):
            raise KeyError(path)
        node, i = node[k], i + 1
    if keys[-1] not in node:
        raise KeyError(path)
    return node[keys[-1]]


def scaled(value, factor: float, path: str):
    """A number, distribution or schedule with every location/scale parameter multiplied by ``factor``."""
    if isinstance(value, bool):
        raise SolveError(f"--lever {path}: a true/false value cannot be scaled")
    if isinstance(value, (int, float)):
        return float(value) * factor
    if isinstance(value, list):  # a schedule: each piece's value
        return [dict(p, value=scaled(p["value"], factor, path)) if isinstance(p, dict) and "value" in p
                else scaled(p, factor, path) for p in value]
    if isinstance(value, dict) and "dist" in value:
        out = dict(value)
        for k in SCALE_KEYS:
            if k in out and k != "value":
                out[k] = [float(x) * factor for x in out[k]] if isinstance(out[k], list) else float(out[k]) * factor
        if "value" in out:
            out["value"] = scaled(out["value"], factor, path)
        return out
    raise SolveError(f"--lever {path}: {type(value).__name__} value {value!r} cannot be scaled")


def toml_value(v) -> str:
    """An inline TOML value (for an override ``PATH=value`` that ``--set`` and the results file replay)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise SolveError(f"lever value {v} is not finite")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        def key(k):
            return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)
        return "{ " + ", ".join(f"{key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise SolveError(f"cannot write {v!r} as TOML")


@dataclass
class Lever:
    path: str
    scale: bool
    integer: bool
    base: object  # the scenario's value at path (None when absent)

    def override(self, x: float) -> str:
        if self.scale:
            return f"{self.path}={toml_value(scaled(self.base, x, self.path))}"
        return f"{self.path}={toml_value(int(x) if self.integer else float(x))}"


def make_lever(raw: dict, path: str, scale: bool) -> Lever:
    try:
        base = _find(raw, path)
    except KeyError:
        base = None
    if scale:
        if base is None:
            raise SolveError(f"--lever {path} --scale: the scenario has no value at {path} to scale")
        scaled(base, 1.0, path)  # refuses what cannot be scaled
        return Lever(path, True, False, base)
    if isinstance(base, list) or isinstance(base, dict) and "dist" in base:
        what = "a schedule" if isinstance(base, list) else f"a distribution ({base.get('dist')})"
        raise SolveError(f"--lever {path} is {what}; add --scale to search a factor that multiplies it as a whole")
    if isinstance(base, dict):
        raise SolveError(f"--lever {path} is a table, not a value; name one of its keys ({', '.join(base)})")
    if isinstance(base, (bool, str)):
        raise SolveError(f"--lever {path} is {base!r}, not a number")
    return Lever(path, False, isinstance(base, int) and not isinstance(base, bool), base)


# ----------------------------------------------------------------------------- the search


@dataclass
class Evaluation:
    lever: float
    estimate: stats_mod.Estimate
    verdict: stats_mod.Verdict
    seconds: float
    runs: int
    step: int = 0  # 1-based order of evaluation

    def as_dict(self) -> dict:
        e = self.estimate
        return {"lever": self.lever, "statistic": e.value, "se": e.se, "ci95": list(e.interval),
                "meets": self.verdict.holds, "seconds": round(self.seconds, 4), "runs": self.runs, "step": self.step}


def solve(scenario_path: str, *, lever: str, lo: float, hi: float, target: str, scale: bool = False,
          runs: int | None = None, seed: int | None = None, tol: float | None = None, sets: list[str] | None = None,
          output: str | Path | None = None, force: bool = False, threads: int | None = None,
          until: str | None = None, max_runs: int | None = None,
          note: Callable[[str], None] | None = None) -> dict:
    """The search as a dict (keys in docs/summary-json.md); writes the final evaluation's file to ``output``."""
    note = note or (lambda m: None)
    t_start = time.perf_counter()
    sets = list(sets or [])
    origin = str(resolve(scenario_path))
    text = read_text(origin)
    base = loads(text, sets, origin=origin)  # validates the scenario and the --set overrides once
    if not lo < hi:
        raise SolveError(f"--range {lo:g},{hi:g}: LO must be below HI")
    lev = make_lever(base.raw, lever, scale)
    if lev.integer and (lo != int(lo) or hi != int(hi)):
        raise SolveError(f"--lever {lever} is an integer ({lev.base!r}); give an integer --range (found {lo:g},{hi:g})")
    ctx = stats_mod.Context.of_model(base.model)
    rule = stats_mod.parse_rule(target, ctx, "--target")
    precision = None if until is None else precision_rule(until, ctx)
    if max_runs is not None and until is None:
        raise SolveError("--max-runs goes with --until RULE (each evaluation then runs until it holds)")
    n_max = (until_mod.MAX_RUNS if max_runs is None else max_runs) if until is not None else None
    n_runs = base.scenario.run.runs if runs is None else runs
    the_seed = base.scenario.run.seed if seed is None else seed
    if not 2 <= n_runs <= runner.MAX_RUNS:
        raise SolveError(f"--runs must be in [2, {runner.MAX_RUNS:.0e}] (found {n_runs})")
    if tol is None:
        tol = 1.0 if lev.integer else (hi - lo) / 1024
    if not tol > 0:
        raise SolveError(f"--tol must be positive (found {tol:g})")
    tol = max(tol, 1.0) if lev.integer else tol
    out = Path(output) if output is not None else None
    if out is not None:
        check_target(out, force)  # before the search
    needs = rule.expr.needs() | (precision.expr.needs() if precision is not None else set())
    cache: dict[float, Evaluation] = {}

    def load_at(x: float) -> Loaded:
        return loads(text, sets + [lev.override(x)], origin=origin)

    def evaluate(x: float) -> Evaluation:
        x = float(int(x)) if lev.integer else float(x)
        if x in cache:
            return cache[x]
        t0 = time.perf_counter()
        loaded = load_at(x)
        cols = simulate_columns(loaded.model, the_seed, 0, n_runs, needs, threads)
        n = n_runs
        while precision is not None and n < n_max and not precision.evaluate(stats_mod.ArrayColumns(cols)).holds:
            more = simulate_columns(loaded.model, the_seed, n, min(2 * n, n_max), needs, threads)  # doubling
            cols = {k: np.concatenate([cols[k], more[k]]) for k in needs}
            n = min(2 * n, n_max)
        est = rule.expr.evaluate(stats_mod.ArrayColumns(cols))
        ev = Evaluation(x, est, rule.check(est), time.perf_counter() - t0, n, len(cache) + 1)
        cache[x] = ev
        note(f"artysim: solve: {lever} = {_num(x)}" + (f" ({n:,} runs)" if precision is not None else "")
             + f": {rule.expr.text} = {_num(est.value)}"
             + (f" ± {_num(est.se)}" if est.se is not None else "") + (" (meets)" if ev.verdict.holds else ""))
        return ev

    for x in (lo, hi):  # a bad lever value fails here, before any simulation
        load_at(x)
    e_lo, e_hi = evaluate(lo), evaluate(hi)
    if e_lo.verdict.holds == e_hi.verdict.holds:
        which = "met at both ends" if e_lo.verdict.holds else "not met at either end"
        raise SolveError(
            f"--target {target!r} is {which} of --range {_num(lo)},{_num(hi)}: {rule.expr.text} = "
            f"{_est(e_lo.estimate)} at {_num(lo)} and {_est(e_hi.estimate)} at {_num(hi)}; "
            + ("narrow or move the range to where the target changes" if e_lo.verdict.holds
               else "widen the range or relax the target"))
    smallest = e_hi.verdict.holds  # meets at the top: the smallest lever value meeting it
    s = 1.0 if smallest else -1.0  # search in u = s * lever, where the target holds for large u

    def boundary(pred: Callable[[Evaluation], bool]) -> tuple[float | None, bool]:
        """Smallest u (from the cache, refined by bisection) where pred holds with pred failing just below;
        (None, False) if it holds nowhere, (u, True) if at the range's start."""
        pts = sorted((s * x, ev) for x, ev in cache.items())
        holds = [u for u, ev in pts if pred(ev)]
        if not holds:
            return None, False
        b = holds[0]
        fails = [u for u, ev in pts if u < b and not pred(ev)]
        if not fails:
            return b, True
        a = fails[-1]
        while b - a > tol * (1 + 1e-12):
            m = (a + b) / 2
            if lev.integer:
                m = math.floor(m)
                if m <= a:
                    break
            if pred(evaluate(s * m)):
                b = m
            else:
                a = m
        return b, False

    u_ans, _ = boundary(lambda ev: ev.verdict.holds)
    steps = len(cache)
    to_answer = time.perf_counter() - t_start
    z_ok = lambda ev: not ev.verdict.fails_beyond_mc  # noqa: E731  the optimistic end meets the target
    z_sure = lambda ev: ev.verdict.holds_beyond_mc  # noqa: E731  the pessimistic end meets it
    u_opt, opt_at_start = boundary(z_ok)
    u_sure, _ = boundary(z_sure)
    value = s * u_ans
    ends = [s * u_opt if u_opt is not None else None, s * u_sure if u_sure is not None else None]
    # in lever order; an end at the range's start or with no pessimistic end in the range is open there
    start, stop = (lo, hi) if smallest else (hi, lo)
    lo_end = start if opt_at_start else ends[0]
    hi_end = stop if ends[1] is None else ends[1]
    interval = sorted([lo_end, hi_end])
    interval_open = [bool(opt_at_start), ends[1] is None] if smallest else [ends[1] is None, bool(opt_at_start)]
    evs = sorted(cache.values(), key=lambda ev: ev.lever)
    mono = _monotone(evs, rule, smallest)
    final = cache[value]
    res = {
        "solve_version": SOLVE_VERSION,
        "scenario": base.scenario.scenario.name,
        "lever": lever, "scale": lev.scale, "integer": lev.integer,
        "range": [lo, hi], "target": target, "runs": final.runs, "seed": str(the_seed), "tol": tol,
        "until": until,
        "direction": "smallest" if smallest else "largest",
        "value": value,
        "statistic": final.estimate.value, "se": final.estimate.se,
        "interval": interval, "interval_open": interval_open,
        "monotone": mono is None, "monotone_note": mono,
        "bisection_steps": steps, "seconds_to_answer": round(to_answer, 3),
        "evaluations": [ev.as_dict() for ev in evs],
        "override": lev.override(value),
        "seconds": None, "output": None,
    }
    if out is not None:
        attrs = {"solve_lever": lever, "solve_scale": int(lev.scale), "solve_target": target,
                 "solve_value": float(value), "solve_interval": json.dumps(interval),
                 "solve_evaluations": json.dumps(jsonable([ev.as_dict() for ev in evs]))}
        if until is not None:
            attrs["solve_until"] = until
        res["output"] = str(runner.run_loaded(load_at(value), runs=final.runs, seed=the_seed, output=out,
                                              threads=threads, force=force, quiet=True, extra_attrs=attrs))
    res["seconds"] = round(time.perf_counter() - t_start, 3)
    return res


def _monotone(evs: list[Evaluation], rule: stats_mod.Rule, smallest: bool) -> str | None:
    """None when the statistic moves the expected way between evaluations (within MC error), else why not."""
    # the target holds for large levers (smallest) under <=: the statistic should fall as the lever grows
    falls = rule.upper == smallest
    bad = []
    for a, b in zip(evs, evs[1:]):
        va, vb = a.estimate.value, b.estimate.value
        if va is None or vb is None or a.estimate.se is None or b.estimate.se is None:
            continue
        step = (vb - va) if falls else (va - vb)  # positive = the wrong way
        if step > Z95 * math.hypot(a.estimate.se, b.estimate.se):
            bad.append(f"{_num(va)} at {_num(a.lever)} -> {_num(vb)} at {_num(b.lever)}")
    if not bad:
        return None
    return (f"not monotone beyond Monte Carlo error: {rule.expr.text} moves the wrong way between "
            f"{'; '.join(bad[:3])}" + (f" (and {len(bad) - 3} more)" if len(bad) > 3 else "")
            + "; the answer is one crossing of the threshold, others may exist")


def _num(x) -> str:
    if x is None:
        return "beyond horizon"
    ax = abs(x)
    return f"{x:,.0f}" if ax >= 1e4 else f"{x:.6g}"


def _est(e: stats_mod.Estimate) -> str:
    if e.value is None:
        return "beyond horizon"
    return _num(e.value) + (f" ± {_num(e.se)}" if e.se is not None else "")


def parse_range(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2:
        raise SolveError(f"--range {text!r}: expected LO,HI (e.g. --range 0.5,3)")
    try:
        lo, hi = (float(p.replace("_", "")) for p in parts)
    except ValueError:
        raise SolveError(f"--range {text!r}: expected two numbers LO,HI") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise SolveError(f"--range {text!r}: expected finite numbers")
    return lo, hi


def format_table(r: dict) -> str:
    """Readable text of a solve."""
    what = f"{r['lever']} ×" if r["scale"] else r["lever"]
    lo, hi = r["interval"]
    o_lo, o_hi = r["interval_open"]
    iv = f"[{'≤ ' if o_lo else ''}{_num(lo)}, {'≥ ' if o_hi else ''}{_num(hi)}]"
    lines = [
        f"solve {r['scenario']}: {r['direction']} {what} in [{_num(r['range'][0])}, {_num(r['range'][1])}] "
        f"meeting {r['target']}",
        (f"{r['runs']:,} runs per evaluation" if not r.get("until") else
         f"runs per evaluation doubled until {r['until']} ({r['runs']:,} at the answer)")
        + f", seed {r['seed']} (common random numbers); tolerance {_num(r['tol'])}",
        "",
        f"answer              {r['lever']}{' scaled by' if r['scale'] else ' ='} {_num(r['value'])}"
        f"   ({r['target'].split('<')[0].split('>')[0].strip()} = {_num(r['statistic'])}"
        + (f" ± {_num(r['se'])})" if r["se"] is not None else ")"),
        f"Monte Carlo interval {iv}   (lever values where the statistic's 95 % interval straddles the threshold)",
        f"override            --set {r['override']}" if r["scale"] else None,
        f"note                {r['monotone_note']}" if r["monotone_note"] else None,
        "",
        f"{'lever':>16}{'statistic':>18}{'se':>12}{'meets':>7}{'seconds':>9}" + (f"{'runs':>10}" if r["until"] else ""),
    ]
    for e in r["evaluations"]:
        lines.append(f"{_num(e['lever']):>16}{_num(e['statistic']):>18}"
                     f"{(_num(e['se']) if e['se'] is not None else 'n/a'):>12}{'yes' if e['meets'] else 'no':>7}"
                     f"{e['seconds']:>9.2f}" + (f"{e['runs']:>10,}" if r["until"] else ""))
    lines.append(f"\n{len(r['evaluations'])} evaluations ({r['bisection_steps']} to the answer, "
                 f"{r['seconds_to_answer']:.1f} s), {r['seconds']:.1f} s in all")
    if r["output"]:
        lines.append(f"wrote {r['output']} (the evaluation at the answer, the search in its solve_* attributes)")
    return "\n".join(x for x in lines if x is not None)

