"""Fuzzing the job-script arguments: any out-dir name and any SLURM option value is either refused with
one line (exit 2, nothing created) or written so that the generated scripts, run by bash under a fake
``sbatch`` and a fake interpreter that record their arguments, pass it through as data, exactly, and
execute nothing of it. ``ARTYSIM_FUZZ_SCALE`` multiplies the number of examples."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_security import NAME, NK, bash, invoke, no_pwned, recorded, sbatch_directives

from artysim.results import shards as shards_mod

SCALE = float(os.environ.get("ARTYSIM_FUZZ_SCALE", "1"))

#: pieces an attacker (or a careless user) puts in a folder name or an option value
PAYLOADS = ["$(touch PWNED)", "`touch PWNED`", ";touch PWNED;", "&& touch PWNED", "| touch PWNED", "\ntouch PWNED\n",
            "'", '"', "\\", "$HOME", "${IFS}", "%j", "%A", "%%", "#", " ", "\t", "*", "?", "[a]", "{a,b}", "~", "!",
            "-", "--", "é", "日本", "🚀", "\x1b[31m", "\r"]
pieces = st.one_of(st.sampled_from(PAYLOADS), st.text(alphabet="abcXYZ019_.-=+,:@", min_size=1, max_size=4))
names = st.lists(pieces, min_size=1, max_size=6).map("".join).filter(
    lambda s: s not in (".", "..") and len(s.encode()) < 120 and "/" not in s and "\0" not in s)

FUZZ = settings(max_examples=int(25 * SCALE), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _fakes(root: Path) -> tuple[Path, Path]:
    """bin/sbatch and bin/python recording their argv under calls/ (as tests/test_security.py's fixture)."""
    b, calls = root / "bin", root / "calls"
    b.mkdir()
    calls.mkdir()
    for name, reply in (("sbatch", 'echo "42$n;cluster"'), ("python", "")):
        f = b / name
        f.write_text("#!/bin/bash\n" f'n=$(ls {calls} | wc -l)\n'
                     f'printf "%s\\0" {name} "$@" > {calls}/$(printf %03d "$n")\n' f"{reply}\n")
        f.chmod(0o755)
    return b, calls


def _one_line_refusal(r) -> None:
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output, r.stderr


@FUZZ
@given(name=names)
def test_any_out_dir_is_refused_or_passed_through_as_data(name):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bindir, calls = _fakes(root)
        (root / "jobs").mkdir()
        d = root / "jobs" / name
        real = sys.executable
        sys.executable = str(bindir / "python")  # what the scripts are written to call
        try:
            r = invoke("slurm", NK, "--runs", 100, "--shards", 2, "--out-dir", d)
        finally:
            sys.executable = real
        if r.exit_code != 0:
            event("refused")
            _one_line_refusal(r)
            assert not os.path.lexists(d)
            return
        event("written")
        for script in ("array.sbatch", "merge.sbatch", "submit.sh"):
            subprocess.run(["bash", "-n", str(d / script)], check=True)
        assert bash(d / "submit.sh", bindir, root).returncode == 0
        task_env = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
        assert bash(d / "array.sbatch", bindir, root, **task_env).returncode == 0
        assert bash(d / "merge.sbatch", bindir, root).returncode == 0
        warm, _, _, task, merge = recorded(calls)
        assert task[task.index("-o") + 1] == str(d / "shards" / shards_mod.shard_name(NAME, 1, 2))
        assert merge[-1] == str(d / "shards") and merge[merge.index("-o") + 1] == str(d / f"{NAME}.nc")
        no_pwned(root)
        for script in ("array.sbatch", "merge.sbatch"):
            opts = sbatch_directives((d / script).read_text())
            assert all(o.startswith("--") for o in opts), opts  # nothing but options: no stray word


#: values SLURM accepts, alone or with a payload appended
VALID = {"--partition": ["debug", "gpu,cpu", "long.q"], "--account": ["acct_1", "proj-x"],
         "--time": ["30", "01:00:00", "2-12", "1-00:30:00"], "--mem": ["4G", "512M", "1000"]}
options = st.sampled_from(sorted(VALID)).flatmap(lambda o: st.tuples(st.just(o), st.one_of(
    st.sampled_from(VALID[o]), names, st.tuples(st.sampled_from(VALID[o]), names).map("".join))))


@FUZZ
@given(option=options)
def test_any_slurm_option_is_refused_or_written_as_one_directive(option):
    opt, value = option
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "job"
        r = invoke("slurm", NK, "--runs", 100, "--shards", 2, "--out-dir", d, opt, value)
        if r.exit_code != 0:
            event("refused")
            _one_line_refusal(r)
            assert not d.exists()
            return
        event("written")
        for script in ("array.sbatch", "merge.sbatch"):
            text = (d / script).read_text()
            assert f"{opt}={value}" in sbatch_directives(text)
            assert all(o.startswith("--") for o in sbatch_directives(text))
            assert "touch PWNED" not in "\n".join(x for x in text.splitlines() if not x.startswith("#"))
