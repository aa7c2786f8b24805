"""``artysim report``: one self-contained HTML page, read back in a real headless Chromium (no mock).

The browser test loads the written file, reads the rendered DOM (``--dump-dom``) and checks every number
marked with ``data-key`` against ``summary --format json`` / ``compare --format json`` of the same files,
that nothing on the page points to the network (only the plain citation links of the provenance table),
and that a screenshot is a picture, not a blank page. Skipped only where Chromium is not installed
(``.ci/run`` installs it)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support import assert_refused

from artysim.analysis import report
from artysim.cli import main
from artysim.jobs import run as runner
from artysim.jobs import sweep as sweeper
from artysim.results.reader import open_file

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CHROMIUM = report.chromium()
browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The two bundled scenarios of the README's comparison, small: they pair (same seed and runs)."""
    d = tmp_path_factory.mktemp("report")
    a = runner.run(str(CONFIGS / "baseline-2023.toml"), runs=400, output=d / "base.nc", quiet=True)
    b = runner.run(str(CONFIGS / "nk-deal-2023.toml"), runs=400, output=d / "nk.nc", quiet=True)
    out = d / "report.html"
    res = CliRunner().invoke(main, ["report", str(a), str(b), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return {"a": a, "b": b, "html": out, "dir": d}


def _json(*args) -> dict:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


class _Page(HTMLParser):
    """Marked numbers (attributes and text), every src/href with whether it sits in the citations table,
    and the tags used."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.numbers: list[tuple[dict, str]] = []
        self.links: list[tuple[str, str, bool]] = []
        self.tags: set[str] = set()
        self._stack: list[tuple[str, dict]] = []
        self._open: list[list] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        in_citations = any(t == "table" and "citations" in (x.get("class") or "") for t, x in self._stack)
        for k, v in a.items():
            if k in ("src", "href", "xlink:href", "action", "poster", "data") and v:
                self.links.append((tag, v, in_citations))
        void = tag in ("meta", "br", "img", "link", "input", "hr", "use", "path", "rect", "stop")
        if not void:
            self._stack.append((tag, a))
        if "data-key" in a:
            self._open.append([a, ""])

    def handle_endtag(self, tag):
        while self._stack:
            t, a = self._stack.pop()
            if "data-key" in a and self._open:
                at, text = self._open.pop()
                self.numbers.append((at, text))
            if t == tag:
                break

    def handle_data(self, data):
        for item in self._open:
            item[1] += data


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    p.close()
    return p


def _resolve(obj, path: str):
    """The value at a dotted path of the JSON; keys may hold dots themselves ("0.5"), so the longest key
    that matches is taken at each step."""
    while path:
        if isinstance(obj, list):
            head, _, path = path.partition(".")
            obj = obj[int(head)]
            continue
        keys = sorted((k for k in obj if path == k or path.startswith(k + ".")), key=len, reverse=True)
        assert keys, (path, list(obj)[:20])
        obj = obj[keys[0]]
        path = path[len(keys[0]) + 1:]
    return obj


def _check_numbers(page: _Page, summaries: list[dict], comparisons: dict[int, dict]) -> set[str]:
    seen = set()
    for attrs, text in page.numbers:
        key = attrs["data-key"]
        if "data-file" in attrs:
            want, where = _resolve(summaries[int(attrs["data-file"])], key), f"file {attrs['data-file']}"
            seen.add(key)
        else:
            want, where = _resolve(comparisons[int(attrs["data-compare"])], key), f"compare {attrs['data-compare']}"
            seen.add("compare:" + key)
        if attrs.get("data-null"):
            assert want is None, (where, key, want, text)
            continue
        shown = float(text.strip().replace("−", "-").replace(",", "").replace("+", ""))
        digits = int(attrs["data-digits"])
        tol = 0.5 * 10 ** -digits * (1 + 1e-9) + 1e-12
        if attrs.get("data-unit") == "%":
            shown, tol = shown / 100, tol / 100
        assert abs(shown - want) <= tol, (where, key, text, want)
    return seen


def _dom(path: Path) -> str:
    with tempfile.TemporaryDirectory() as home:  # Chromium's profile, not beside the report
        r = subprocess.run(report.browser_args(CHROMIUM) + ["--dump-dom", path.resolve().as_uri()],
                           capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": home})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "<html" in r.stdout[:500]
    return r.stdout


@browser
def test_the_browser_shows_the_json_numbers(files):
    dom = _dom(files["html"])
    page = _parse(dom)
    summaries = [_json("summary", str(files[k]), "--format", "json") for k in ("a", "b")]
    comparisons = {1: _json("compare", str(files["a"]), str(files["b"]), "--format", "json")}
    assert comparisons[1]["paired"]
    seen = _check_numbers(page, summaries, comparisons)
    # the numbers an analyst reads first are all there, and were all checked
    for key in ("p_any_shortage", "p_any_shortage_se", "p_any_shortage_ci95.0", "fill_rate.0", "fill_rate.1",
                "effective_fill_rate.0", "shortfall_total.0", "shortage_days.0", "first_shortage_day_percentiles.0.05"):
        assert key in seen, key
    for j, _ in enumerate(summaries[1]["sources"]):
        for v in ("received", "fired", "duds", "effective"):
            assert f"sources.{j}.{v}.0" in seen
    for key in ("p_any_shortage.difference.0", "first_shortage_day.delay_where_a_short.mean.0",
                "first_shortage_day.p_b_later.0", "effective_total.difference.0", "shortfall_total.variance_reduction",
                "effective_per_delivered_shell.value.0"):
        assert "compare:" + key in seen, key
    assert len(page.numbers) > 100
    # every plot drawn, as inline SVG
    assert dom.count("<svg") >= 2 * 4 + 1 + 2
    for kind in ("fan", "depletion", "histogram", "sources", "compare", "swing"):
        assert f'data-kind="{kind}"' in dom


@browser
def test_the_page_needs_no_network(files):
    for text in (files["html"].read_text(encoding="utf-8"), _dom(files["html"])):
        page = _parse(text)
        assert not page.tags & {"script", "link", "iframe", "img", "object", "embed", "image"}
        external = [(t, v, cit) for t, v, cit in page.links if v.startswith(("http:", "https:", "//", "ftp:"))]
        assert external, "the cited figures' sources are linked"
        for tag, value, in_citations in external:
            assert tag == "a" and in_citations, (tag, value)
        internal = [v for _, v, _ in page.links if not v.startswith(("http:", "https:"))]
        assert all(v.startswith("#") for v in internal), internal[:5]
        low = text.lower()
        assert "@import" not in low and "url(http" not in low and "url(//" not in low
        assert "<!doctype svg" not in low


@browser
def test_a_screenshot_is_a_picture(files, tmp_path):
    from matplotlib import image

    shot = tmp_path / "shot.png"
    r = subprocess.run(report.browser_args(CHROMIUM) + [f"--screenshot={shot}", "--window-size=1280,3000",
                                                          "--hide-scrollbars", files["html"].resolve().as_uri()],
                       capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)})
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = image.imread(shot)
    assert img.shape[0] == 3000 and img.shape[1] == 1280
    px = (img[..., :3].reshape(-1, 3) * 255).astype(np.uint8)
    colours = np.unique(px, axis=0)
    assert len(colours) > 200, len(colours)  # text, tables and plots, not a blank or single-colour page
    assert (px.min(axis=1) < 200).mean() > 0.03  # a fair share of the page is ink, not background


@browser
def test_pdf_printed_from_the_same_page(files):
    out = files["dir"] / "report.pdf"
    res = CliRunner().invoke(main, ["report", str(files["a"]), str(files["b"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    assert data[:5] == b"%PDF-" and len(data) > 50_000
    assert sorted(p.name for p in files["dir"].iterdir() if p.name.startswith(".")) == []  # no temporaries


def test_report_content_and_size(files):
    text = files["html"].read_text(encoding="utf-8")
    for needle in ("The question", "How much does the North Korean shell deal", "Headline answers", "Comparison",
                   "paired</b>", "By source", "What drives the answer", "Provenance", "scenario hash",
                   "20230913", "N02", "Figures cited"):
        assert needle in text, needle
    with open_file(files["b"]) as ds:
        assert ds.attrs["scenario_hash"] in text
    assert "Calibration" not in text  # no weights in these files
    assert files["html"].stat().st_size < 3_000_000


def test_report_refuses_with_one_line(files, tmp_path):
    r = CliRunner()
    a = str(files["a"])
    assert_refused(r.invoke(main, ["report", a, "-o", str(files["html"])]), "exists", "--force")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    assert_refused(r.invoke(main, ["report", str(junk), "-o", str(tmp_path / "r.html")]), "junk.nc")
    assert_refused(r.invoke(main, ["report", str(tmp_path / "none.nc"), "-o", str(tmp_path / "r.html")]),
                   "no such file")
    assert_refused(r.invoke(main, ["report", a, "-o", str(tmp_path / "r.txt")]), ".html")
    assert_refused(r.invoke(main, ["report", a, "-o", str(tmp_path / "r.html"), "--format", "pdf"]), ".pdf")
    assert_refused(r.invoke(main, ["report", a, "-o", str(tmp_path / "no" / "r.html")]), "does not exist")
    assert_refused(r.invoke(main, ["report", a, "-o", str(tmp_path / "r.pdf")],
                            env={"ARTYSIM_CHROMIUM": str(tmp_path / "no-such-browser")}), "Chromium")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.nc"]


def test_a_sweep_report_shows_the_sweep_json(tmp_path):
    sw = sweeper.run_sweep(str(CONFIGS / "baseline-2023.toml"),
                           ["demand.base=15000,30000", "source.domestic.daily_cv=0.1,0.2"], tmp_path / "sw.nc",
                           runs=120, quiet=True)
    out = tmp_path / "sw.html"
    report.write([sw], out)
    text = out.read_text(encoding="utf-8")
    page = _parse(text)
    summary = _json("summary", str(sw), "--format", "json")
    seen = _check_numbers(page, [summary], {})
    assert {f"variants.{i}.p_any_shortage" for i in range(4)} <= seen
    assert 'data-kind="sweep"' in text and 'data-kind="heatmap"' in text
