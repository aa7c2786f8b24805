"""Statistics by name: a small expression language over the runs of a results file, each statistic with
its Monte Carlo standard error, and rules (``EXPR <= X``) that say whether they hold, and whether they
hold beyond Monte Carlo error. Shared by ``summary --stat``, ``run --until`` and ``solve --target``.

Grammar (whitespace is free; names are case-sensitive)::

    rule    := expr ("<=" | "<" | ">=" | ">") NUMBER
    expr    := "p_any_shortage"
             | "p_short_by" "(" DATE ")"              DATE is YYYY-MM-DD, a day of the horizon
             | "quantile" "(" var "," NUMBER ")"      level in (0, 1)
             | "mean" "(" var ")"
             | "fill_rate" | "effective_fill_rate"
             | "se" "(" expr ")" | "halfwidth" "(" expr ")"
    var     := NAME | NAME ":" SOURCE                 a per-run variable; VAR:SOURCE for per-source ones

Estimators and their standard errors (n runs):

* ``p_any_shortage``, ``p_short_by(D)``: the share p of runs short (by day D); SE ``sqrt(p (1 - p) / n)``.
* ``mean(VAR)``: the sample mean; SE ``s / sqrt(n)`` (s the sample standard deviation, ddof 1).
* ``fill_rate`` = sum fired / sum demand, ``effective_fill_rate`` = sum effective / sum demand: ratio
  estimators; delta-method SE ``sd(num - r den) / (mean(den) sqrt(n))`` (``stats.ratio_of_means``).
* ``quantile(VAR, q)``: the order statistic ``x_(k)``, ``k = ceil(q n)`` (numpy's ``inverted_cdf``).
  For ``first_shortage_day`` runs never short count as beyond the horizon, so a quantile landing on
  them is *beyond horizon* (value ``None``). Its SE-like half-width is ``(x_(hi) - x_(lo)) / (2 Z95)``
  with the distribution-free 95 % ranks ``lo = max(1, Binom(n, q).ppf(0.025))``,
  ``hi = min(n, Binom(n, q).ppf(0.975) + 1)`` (``stats.censored_percentile_ci``), ``None`` when ``hi``
  is beyond the horizon.
* ``se(EXPR)``: the SE of EXPR as a value; ``halfwidth(EXPR)`` = Z95 x SE (the 95 % half-width). Their
  own SE is not estimated (``None``): a precision rule compares the estimate itself.

A rule ``EXPR <= X`` *holds* when the estimate is at most X, and *holds beyond Monte Carlo error* when
its 95 % interval (estimate ± Z95 SE, or the order-statistic interval of a quantile) lies entirely on
the holding side. A quantile beyond the horizon compares as larger than every day.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field

import numpy as np

from artysim.analysis.stats import (
    Z95,
    effective_sample_size,
    mean_se,
    ratio_of_means,
    weighted_mean_se,
    weighted_quantile,
    weighted_quantile_ci,
    weighted_ratio,
)
from artysim.errors import ArtysimError
from artysim.results import schema


class ExpressionError(ArtysimError):
    """A statistic, rule or condition that does not parse or names something unknown (one line)."""


# ----------------------------------------------------------------------------- context


#: per-run variables whose per-run value is a count of the whole run (dims run) or per source
SCALAR_VARS = tuple(v.name for v in schema.PER_RUN if v.dims == ("run",))
SOURCE_VARS = tuple(v.name for v in schema.PER_RUN if v.dims == ("run", "source"))


@dataclass(frozen=True)
class Context:
    """What an expression may name: the file's (or model's) start date, horizon and sources."""

    start: dt.date
    horizon: int
    sources: tuple[str, ...]
    variables: tuple[str, ...] = SCALAR_VARS + SOURCE_VARS

    @classmethod
    def of_dataset(cls, ds) -> Context:
        names = tuple(v for v in SCALAR_VARS + SOURCE_VARS if v in ds.variables)
        return cls(dt.date.fromisoformat(str(ds.attrs["start_date"])), int(ds.sizes["time"]),
                   tuple(str(s) for s in ds["source"].values), names)

    @classmethod
    def of_model(cls, model) -> Context:
        scn = model.scenario
        return cls(scn.start_date, int(model.horizon), tuple(scn.source_names()))


# ----------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w.]))
  | (?P<number>[+-]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*(?:@\d{4}-\d{2}-\d{2})?)
  | (?P<op><=|>=|<|>)
  | (?P<punct>[(),:])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # date number name op punct end
    text: str
    pos: int  # 0-based offset of the token in the expression


def tokenize(text: str, fail) -> list[Token]:
    out, i = [], 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            fail(f"unexpected character {text[i]!r}", i)
        if m.lastgroup != "ws":
            out.append(Token(m.lastgroup, m.group(), i))
        i = m.end()
    out.append(Token("end", "", len(text)))
    return out


class _Parser:
    """Recursive descent over a token list; ``fail`` raises one line naming the option and the text."""

    def __init__(self, text: str, option: str):
        self.text = text
        self.option = option
        self.toks = tokenize(text, self.fail)
        self.i = 0

    def fail(self, msg: str, pos: int, hint: str = ""):
        raise ExpressionError(f"{self.option} {self.text!r}: {msg} at position {pos}" + (f"; {hint}" if hint else ""))

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str, what: str = "") -> Token:
        t = self.tok
        if t.text != text:
            found = f"'{t.text}'" if t.kind != "end" else "the end"
            self.fail(f"expected '{text}'{what} but found {found}", t.pos)
        return self.next()

    def number(self, what: str) -> tuple[float, Token]:
        t = self.tok
        if t.kind != "number":
            found = f"'{t.text}'" if t.kind != "end" else "the end"
            self.fail(f"expected {what} (a number) but found {found}", t.pos)
        self.next()
        return float(t.text.replace("_", "")), t

    def end(self) -> None:
        t = self.tok
        if t.kind != "end":
            self.fail(f"unexpected '{t.text}' after the expression", t.pos)


# ----------------------------------------------------------------------------- values


@dataclass
class Estimate:
    """A statistic's value and standard error; ``value`` None with ``beyond_horizon`` for a quantile of
    the first shortage day that lands on runs never short; ``interval`` the 95 % interval."""

    value: float | None
    se: float | None
    interval: tuple[float | None, float | None] = (None, None)
    beyond_horizon: bool = False
    runs: int = 0

    def as_dict(self) -> dict:
        d = {"value": _clean(self.value), "se": _clean(self.se),
             "ci95": [_clean(self.interval[0]), _clean(self.interval[1])]}
        if self.beyond_horizon:
            d["beyond_horizon"] = True
        return d


def _clean(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _normal(value: float, se: float, n: int) -> Estimate:
    lo = value - Z95 * se if math.isfinite(se) else None
    hi = value + Z95 * se if math.isfinite(se) else None
    return Estimate(value, se, (lo, hi), runs=n)


# ----------------------------------------------------------------------------- expression nodes


@dataclass(frozen=True)
class Expr:
    text: str  # the source text of this node (for printing)

    def needs(self) -> set[tuple[str, str | None]]:
        return set()

    #: the range the statistic can take (for refusing rules that can never hold or always hold)
    bounds: tuple[float, float] = field(default=(-math.inf, math.inf), compare=False)

    def evaluate(self, cols) -> Estimate:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class PShortBy(Expr):
    day: int | None = None  # None: any day of the horizon

    def needs(self):
        return {("first_shortage_day", None)}

    def evaluate(self, cols) -> Estimate:
        f = cols.get("first_shortage_day")
        n = len(f)
        if n == 0:
            return Estimate(math.nan, math.nan, runs=0)
        short = ~np.isnan(f) if self.day is None else (f <= self.day)  # NaN <= d is False
        w = _weights(cols)
        if w is not None:  # calibrated: the weighted share, its SE from the effective sample size
            p = weighted_mean_se(short.astype(np.float64), w)[0]
            ess = effective_sample_size(w)
            return _normal(p, math.sqrt(max(p * (1 - p), 0.0) / ess) if ess > 0 else math.nan, n)
        p = float(np.count_nonzero(short)) / n
        return _normal(p, math.sqrt(max(p * (1 - p), 0.0) / n), n)


@dataclass(frozen=True)
class Mean(Expr):
    var: str = ""
    source: str | None = None

    def needs(self):
        return {(self.var, self.source)}

    def evaluate(self, cols) -> Estimate:
        x = cols.get(self.var, self.source)
        w = _weights(cols)
        m, se = mean_se(x) if w is None else weighted_mean_se(x, w)
        return _normal(m, se, len(x))


@dataclass(frozen=True)
class Ratio(Expr):
    num: str = ""
    den: str = "demand_total"

    def needs(self):
        return {(self.num, None), (self.den, None)}

    def evaluate(self, cols) -> Estimate:
        num, den = cols.get(self.num), cols.get(self.den)
        w = _weights(cols)
        r, se = ratio_of_means(num, den) if w is None else weighted_ratio(num, den, w)
        return _normal(r, se, len(num))


@dataclass(frozen=True)
class Quantile(Expr):
    var: str = ""
    source: str | None = None
    q: float = 0.5

    def needs(self):
        return {(self.var, self.source)}

    def evaluate(self, cols) -> Estimate:
        x = cols.get(self.var, self.source)
        n = len(x)
        if n == 0:
            return Estimate(math.nan, math.nan, runs=0)
        w = _weights(cols)
        if w is not None:  # calibrated: the weighted inverted-cdf quantile, interval from the ESS
            x = np.where(np.isnan(x), np.inf, x)
            v = weighted_quantile(x, w, self.q)
            a, b = weighted_quantile_ci(x, w, self.q)
            se = (b - a) / (2 * Z95) if math.isfinite(b) and math.isfinite(a) else None
            fin = math.isfinite(v)
            return Estimate(v if fin else None, se, (a if math.isfinite(a) else None,
                                                     b if math.isfinite(b) else None), beyond_horizon=not fin, runs=n)
        x = np.sort(np.where(np.isnan(x), np.inf, x))  # first_shortage_day: never short = beyond
        k = order_rank(self.q, n)
        lo, hi = quantile_ranks(self.q, n)
        v, a, b = float(x[k - 1]), float(x[lo - 1]), float(x[hi - 1])
        se = (b - a) / (2 * Z95) if math.isfinite(b) else None
        fin = math.isfinite(v)
        return Estimate(v if fin else None, se, (a if math.isfinite(a) else None, b if math.isfinite(b) else None),
                        beyond_horizon=not fin, runs=n)


@dataclass(frozen=True)
class SeOf(Expr):
    inner: Expr | None = None
    factor: float = 1.0  # 1: se(...), Z95: halfwidth(...)

    def needs(self):
        return self.inner.needs()

    def evaluate(self, cols) -> Estimate:
        e = self.inner.evaluate(cols)
        v = None if e.se is None else self.factor * e.se
        return Estimate(v, None, (v, v), runs=e.runs)


def _weights(cols) -> np.ndarray | None:
    """The runs' calibration weights when the columns come from a calibrated file, else None."""
    return getattr(cols, "weights", None)


def order_rank(q: float, n: int) -> int:
    """1-based rank of the q-quantile order statistic (``ceil(q n)``, exact for decimal levels)."""
    return min(n, max(1, math.ceil(round(q * n, 9))))


def quantile_ranks(q: float, n: int, level: float = 0.95) -> tuple[int, int]:
    """Distribution-free ranks (1-based) of a ``level`` interval for the q-quantile from n runs."""
    from scipy.stats import binom

    a = (1 - level) / 2
    return max(1, int(binom.ppf(a, n, q))), min(n, int(binom.ppf(1 - a, n, q)) + 1)


NAMES = ("p_any_shortage", "p_short_by", "quantile", "mean", "fill_rate", "effective_fill_rate", "se",
         "halfwidth")


def _expr(p: _Parser, ctx: Context) -> Expr:
    t = p.tok
    if t.kind != "name":
        found = f"'{t.text}'" if t.kind != "end" else "nothing"
        p.fail(f"expected a statistic but found {found}", t.pos, f"known: {', '.join(NAMES)}")
    p.next()
    name = t.text
    if name == "p_any_shortage":
        return _span(PShortBy, p, t, bounds=(0.0, 1.0))
    if name in ("fill_rate", "effective_fill_rate"):
        num = "fired_total" if name == "fill_rate" else "effective_total"
        return _span(Ratio, p, t, num=num, bounds=(0.0, 1.0))
    if name == "p_short_by":
        p.expect("(", " after p_short_by")
        d = p.tok
        if d.kind != "date":
            p.fail(f"expected a date YYYY-MM-DD but found '{d.text}'", d.pos)
        try:
            day = dt.date.fromisoformat(d.text)
        except ValueError:
            p.fail(f"'{d.text}' is not a date", d.pos)
        last = ctx.start + dt.timedelta(days=ctx.horizon - 1)
        k = (day - ctx.start).days
        if not 0 <= k < ctx.horizon:
            p.fail(f"date {d.text} is outside the horizon ({ctx.start.isoformat()} .. {last.isoformat()})", d.pos)
        p.next()
        p.expect(")", " to close p_short_by(")
        return _span(PShortBy, p, t, day=k, bounds=(0.0, 1.0))
    if name == "mean":
        p.expect("(", " after mean")
        var, src, vt = _var(p, ctx)
        if var == "first_shortage_day":
            p.fail("first_shortage_day has no mean", vt.pos, "runs never short have no day; use "
                   "quantile(first_shortage_day, Q) or p_short_by(DATE)")
        p.expect(")", " to close mean(")
        return _span(Mean, p, t, var=var, source=src)
    if name == "quantile":
        p.expect("(", " after quantile")
        var, src, _ = _var(p, ctx)
        p.expect(",", " and a level, e.g. quantile(first_shortage_day, 0.1),")
        q, qt = p.number("a quantile level")
        if not 0 < q < 1:
            p.fail(f"quantile level {qt.text} is outside (0, 1)", qt.pos)
        p.expect(")", " to close quantile(")
        return _span(Quantile, p, t, var=var, source=src, q=q)
    if name in ("se", "halfwidth"):
        p.expect("(", f" after {name}")
        inner = _expr(p, ctx)
        if isinstance(inner, SeOf):
            p.fail(f"{name}({inner.text}) is not estimated", t.pos, "the standard error of a standard error")
        p.expect(")", f" to close {name}(")
        return _span(SeOf, p, t, inner=inner, factor=1.0 if name == "se" else Z95, bounds=(0.0, math.inf))
    p.fail(f"unknown statistic '{name}'", t.pos, f"known: {', '.join(NAMES)}")
    raise AssertionError  # unreachable


def _span(cls, p: _Parser, first: Token, **kw) -> Expr:
    last = p.toks[p.i - 1]
    return cls(text=p.text[first.pos:last.pos + len(last.text)], **kw)


def _var(p: _Parser, ctx: Context) -> tuple[str, str | None, Token]:
    t = p.tok
    if t.kind != "name":
        found = f"'{t.text}'" if t.kind != "end" else "the end"
        p.fail(f"expected a per-run variable but found {found}", t.pos)
    p.next()
    if t.text not in ctx.variables:
        p.fail(f"unknown variable '{t.text}'", t.pos, f"known: {', '.join(ctx.variables)}")
    src = None
    if t.text in SOURCE_VARS:
        if p.tok.text != ":":
            p.fail(f"'{t.text}' is per source", t.pos, f"name one, e.g. {t.text}:{ctx.sources[0]}")
        p.next()
        s = p.tok
        if s.kind != "name" or s.text not in ctx.sources:
            p.fail(f"unknown source '{s.text}'", s.pos, f"sources: {', '.join(ctx.sources)}")
        p.next()
        src = s.text
    elif p.tok.text == ":":
        p.fail(f"'{t.text}' is not per source (no ':SOURCE')", p.tok.pos)
    return t.text, src, t


def parse_expr(text: str, ctx: Context, option: str = "--stat") -> Expr:
    """An expression, checked against ``ctx``; anything wrong raises one ``ExpressionError`` line."""
    p = _Parser(text, option)
    if p.tok.kind == "end":
        p.fail("empty expression", 0, "e.g. p_any_shortage, quantile(first_shortage_day, 0.1)")
    e = _expr(p, ctx)
    if p.tok.kind == "op":
        p.fail(f"a statistic, not a rule: drop '{p.tok.text} ...'", p.tok.pos)
    p.end()
    return e


# ----------------------------------------------------------------------------- rules

_OPS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}


@dataclass(frozen=True)
class Verdict:
    holds: bool
    holds_beyond_mc: bool  # the whole 95 % interval is on the holding side
    fails_beyond_mc: bool  # the whole 95 % interval is on the failing side
    estimate: Estimate


@dataclass(frozen=True)
class Rule:
    """``EXPR OP X``."""

    text: str
    expr: Expr
    op: str
    threshold: float

    @property
    def upper(self) -> bool:
        """True for ``<=``/``<`` (the statistic must stay at or under the threshold)."""
        return self.op in ("<=", "<")

    def holds_value(self, v: float | None) -> bool:
        x = math.inf if v is None else v  # a quantile beyond the horizon is later than any day
        if isinstance(x, float) and math.isnan(x):
            return False
        return _OPS[self.op](x, self.threshold)

    def check(self, e: Estimate) -> Verdict:
        holds = self.holds_value(e.value)
        if isinstance(self.expr, SeOf):  # a precision estimate is compared as it is
            return Verdict(holds, holds, not holds, e)
        lo, hi = e.interval
        lo = (math.inf if e.beyond_horizon else -math.inf) if lo is None else lo
        hi = math.inf if hi is None else hi
        near, far = (hi, lo) if self.upper else (lo, hi)  # the bound that must hold for "beyond MC error"
        return Verdict(holds, holds and self.holds_value(near), not self.holds_value(far), e)

    def evaluate(self, cols) -> Verdict:
        return self.check(self.expr.evaluate(cols))


def parse_rule(text: str, ctx: Context, option: str = "--until") -> Rule:
    """``EXPR <= X`` (or <, >=, >), refused when it could never hold, or always holds, for any results."""
    p = _Parser(text, option)
    if p.tok.kind == "end":
        p.fail("empty rule", 0, "e.g. 'se(p_any_shortage) <= 0.005'")
    e = _expr(p, ctx)
    t = p.tok
    if t.kind != "op":
        found = f"'{t.text}'" if t.kind != "end" else "the end"
        p.fail(f"expected a comparison (<=, <, >=, >) and a number but found {found}", t.pos,
               f"e.g. '{e.text} <= 0.1'")
    p.next()
    x, xt = p.number("a threshold")
    p.end()
    lo, hi = e.bounds
    never = (t.text == "<=" and x < lo) or (t.text == "<" and x <= lo) or (t.text == ">=" and x > hi) or \
        (t.text == ">" and x >= hi)
    always = (t.text == "<=" and x >= hi) or (t.text == "<" and x > hi) or (t.text == ">=" and x <= lo) or \
        (t.text == ">" and x < lo)
    rng = f"[{lo:g}, {hi:g}]"
    if isinstance(e, SeOf) and t.text in ("<=", "<") and x <= 0:
        p.fail(f"can never be met: {e.text} <= {xt.text}", xt.pos,
               "a standard error is 0 only when every run is the same, which more runs cannot bring")
    if never:
        p.fail(f"can never hold: {e.text} is always in {rng}", xt.pos)
    if always:
        p.fail(f"always holds: {e.text} is always in {rng}", xt.pos)
    return Rule(text, e, t.text, x)


# ----------------------------------------------------------------------------- columns


class ArrayColumns:
    """Per-run columns held in memory: ``{(var, source or None): array}``; ``first_shortage_day`` with
    NaN for runs never short (as a results file reads)."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    def get(self, var: str, source: str | None = None) -> np.ndarray:
        return self.arrays[(var, source)]


class DatasetColumns:
    """Columns of a results dataset, each read once and only when needed (optionally only some runs)."""

    def __init__(self, ds, runs: np.ndarray | None = None):
        self.ds = ds
        self.runs = runs
        self.sources = [str(s) for s in ds["source"].values]
        self.cache: dict = {}
        #: a calibrated file's weights (``artysim calibrate``): every estimator then weighs the runs
        self.weights = None
        if "weight" in ds.variables:
            w = ds["weight"] if runs is None else ds["weight"][runs]
            self.weights = np.asarray(w.values, dtype=np.float64)

    def get(self, var: str, source: str | None = None) -> np.ndarray:
        key = (var, source)
        if key not in self.cache:
            v = self.ds[var]
            if source is not None:
                v = v[:, self.sources.index(source)]
            if self.runs is not None:
                v = v[self.runs]
            self.cache[key] = np.asarray(v.values, dtype=np.float64)
        return self.cache[key]


def columns_from_batches(batches, needs: set, source_names: list[str]) -> dict:
    """The needed per-run columns of the kernel's batches (``engine.Batch``), as a results file stores
    them (first_shortage_day NaN when never short)."""
    out = {}
    for var, src in needs:
        col = schema.BY_NAME[var].column
        if col[0] == "totals":
            parts = [b.totals[:, col[1]] for b in batches]
        else:
            j = source_names.index(src)
            parts = [b.per_source[:, j, col[1]] for b in batches]
        x = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
        if var == "first_shortage_day":
            x[x == schema.FILL_DAY] = np.nan
        out[(var, src)] = x
    return out


def evaluate(exprs: list[Expr], cols) -> list[Estimate]:
    return [e.evaluate(cols) for e in exprs]


def format_estimate(text: str, e: Estimate) -> str:
    """``EXPR = value ± se`` (a quantile: with its 95 % interval; beyond the horizon said so)."""
    def num(x):
        if x is None:
            return "n/a"
        ax = abs(x)
        return f"{x:,.0f}" if ax >= 1000 else f"{x:.6g}" if ax >= 1 or ax == 0 else f"{x:.4g}"

    if e.beyond_horizon:
        return f"{text} = beyond horizon" + (f"   (95% from {num(e.interval[0])})" if e.interval[0] is not None
                                             else "")
    s = f"{text} = {num(e.value)}"
    if e.se is not None and math.isfinite(e.se) and e.se > 0 and e.value is not None:
        d = max(0, 1 - math.floor(math.log10(e.se)))  # two significant digits of the SE
        s = f"{text} = {e.value:,.{d}f} ± {e.se:,.{d}f}"
    elif e.se is not None and not math.isnan(e.se):
        s += f" ± {num(e.se)}"
    elif e.interval[1] is None and e.interval[0] is not None and e.value is not None and e.value != e.interval[0]:
        s += " ± n/a (95% upper bound beyond horizon)"
    return s


def stats_of_dataset(ds, texts: list[str], runs: np.ndarray | None = None, option: str = "--stat") -> dict:
    """``{text: Estimate}`` of each expression over a results dataset (only ``runs`` when given);
    every expression is parsed before any data is read, so a bad one costs nothing."""
    if "variant" in ds.dims:
        raise ExpressionError(f"{option}: a sweep file holds several variants; summarise one "
                              "(ds.isel(variant=i)) or use the sweep table")
    ctx = Context.of_dataset(ds)
    exprs = [parse_expr(t, ctx, option) for t in texts]
    cols = DatasetColumns(ds, runs)
    return {t: e.evaluate(cols) for t, e in zip(texts, exprs)}


# ----------------------------------------------------------------------------- --where conditions
#
#   cond   := conj ("or" conj)*
#   conj   := unary ("and" unary)*
#   unary  := "not" unary | "(" cond ")" | PARAM OP value
#   value  := NUMBER | "quantile" "(" NUMBER ")"      the parameter's own empirical quantile over the
#                                                      file's runs (numpy's inverted_cdf order statistic)


@dataclass(frozen=True)
class _Cmp:
    param: str
    op: str
    value: float | None  # None: quantile(q)
    q: float | None = None


@dataclass(frozen=True)
class _Bool:
    op: str  # and, or, not
    args: tuple


@dataclass
class Where:
    """A parsed ``--where`` condition over a file's sampled parameters."""

    text: str
    node: object
    params: list[str]

    def mask(self, ds, option: str = "--where") -> np.ndarray:
        names = [str(x) for x in ds["parameter"].values] if "parameter" in ds.variables else []
        cols = {}
        for name in self.params:
            if name not in names:
                raise ExpressionError(f"{option} {self.text!r}: unknown parameter '{name}'; the file's sampled "
                                      f"parameters: {', '.join(names) or '(none)'}")
            cols[name] = np.asarray(ds["parameters"][:, names.index(name)].values, dtype=np.float64)
        return self._eval(self.node, cols)

    def _eval(self, node, cols) -> np.ndarray:
        if isinstance(node, _Bool):
            parts = [self._eval(a, cols) for a in node.args]
            if node.op == "not":
                return ~parts[0]
            out = parts[0]
            for x in parts[1:]:
                out = (out & x) if node.op == "and" else (out | x)
            return out
        x = cols[node.param]
        v = node.value if node.q is None else float(np.quantile(x, node.q, method="inverted_cdf"))
        return _OPS[node.op](x, v)


def parse_where(text: str, option: str = "--where", known: list[str] | None = None) -> Where:
    """A condition over sampled parameters; ``known`` (the file's parameter paths) checks names at once."""
    p = _Parser(text, option)
    if p.tok.kind == "end":
        p.fail("empty condition", 0, "e.g. 'demand.base > 25000 and source.north_korea.dud_rate >= quantile(0.9)'")
    params: list[str] = []

    def cond():
        args = [conj()]
        while p.tok.kind == "name" and p.tok.text == "or":
            p.next()
            args.append(conj())
        return args[0] if len(args) == 1 else _Bool("or", tuple(args))

    def conj():
        args = [unary()]
        while p.tok.kind == "name" and p.tok.text == "and":
            p.next()
            args.append(unary())
        return args[0] if len(args) == 1 else _Bool("and", tuple(args))

    def unary():
        t = p.tok
        if t.kind == "name" and t.text == "not":
            p.next()
            return _Bool("not", (unary(),))
        if t.text == "(":
            p.next()
            c = cond()
            p.expect(")", " to close '('")
            return c
        if t.kind != "name" or t.text in ("and", "or", "quantile"):
            found = f"'{t.text}'" if t.kind != "end" else "the end"
            p.fail(f"expected a sampled parameter (e.g. demand.base) but found {found}", t.pos)
        if known is not None and t.text not in known:
            p.fail(f"unknown parameter '{t.text}'", t.pos,
                   f"the file's sampled parameters: {', '.join(known) or '(none)'}")
        p.next()
        op = p.tok
        if op.kind != "op":
            found = f"'{op.text}'" if op.kind != "end" else "the end"
            p.fail(f"expected a comparison (<=, <, >=, >) after '{t.text}' but found {found}", op.pos)
        p.next()
        params.append(t.text)
        v = p.tok
        if v.kind == "name" and v.text == "quantile":
            p.next()
            p.expect("(", " after quantile")
            q, qt = p.number("a quantile level")
            if not 0 < q < 1:
                p.fail(f"quantile level {qt.text} is outside (0, 1)", qt.pos)
            p.expect(")", " to close quantile(")
            return _Cmp(t.text, op.text, None, q)
        x, _ = p.number("a value or quantile(Q)")
        return _Cmp(t.text, op.text, x)

    node = cond()
    p.end()
    return Where(text, node, list(dict.fromkeys(params)))


def select_runs(ds, text: str, option: str = "--where") -> tuple[np.ndarray, dict]:
    """Positions of the runs of ``ds`` satisfying the condition, and ``{condition, runs, of_runs}``;
    a condition selecting no run is refused."""
    if "variant" in ds.dims:
        raise ExpressionError(f"{option}: a sweep file holds several variants; select in one variant's file")
    names = [str(x) for x in ds["parameter"].values] if "parameter" in ds.variables else []
    w = parse_where(text, option, known=names)
    m = w.mask(ds, option)
    idx = np.flatnonzero(m)
    n = int(ds.sizes["run"])
    if len(idx) == 0:
        raise ExpressionError(f"{option} {text!r}: selects no run (of {n:,})")
    return idx, {"condition": text, "runs": int(len(idx)), "of_runs": n}


def where(ds, text: str, option: str = "--where"):
    """``(ds restricted to the runs satisfying the condition, {condition, runs, of_runs})``."""
    idx, info = select_runs(ds, text, option)
    return ds.isel(run=idx), info


def where_pair(a, b, text: str, option: str = "--where"):
    """The condition evaluated on A's parameters selects the same run indices in A and in B."""
    idx, info = select_runs(a, text, option)
    runs = np.asarray(a["run"].values)[idx]
    brun = np.asarray(b["run"].values)
    pos = np.searchsorted(brun, runs) if np.all(np.diff(brun) > 0) else None
    if pos is None or np.any(pos >= len(brun)) or np.any(brun[np.minimum(pos, len(brun) - 1)] != runs):
        raise ExpressionError(f"{option} {text!r}: B does not hold every run index the condition selects in A "
                              f"({len(runs):,} runs); compare files of the same runs")
    return a.isel(run=idx), b.isel(run=pos), info


def where_line(info: dict) -> str:
    return (f"where {info['condition']}: {info['runs']:,} of {info['of_runs']:,} runs "
            f"({100 * info['runs'] / info['of_runs']:.1f} %) satisfy it")
