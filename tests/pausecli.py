"""``python tests/pausecli.py ARGS``: the artysim command line with one function made to pause, so that a
test can send a real signal at an exact moment of a real process.

ARTYSIM_TEST_PAUSE = "module:attr.path:before|after:seconds[:suffix]": the first call of that function
(or method) writes the file ARTYSIM_TEST_MARK, then sleeps, before or after the real call (with a
suffix: the first call with an argument whose text ends with it). The special
"artysim.results.atomic:_committed.append:before:S" pauses inside the rename's critical section, just
after the rename and before it is recorded.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path


def _install(spec: str, mark: Path) -> None:
    where, attr, when, seconds, *match = spec.split(":")
    seconds = float(seconds)

    def pause(*args):
        if match and not any(str(a).endswith(match[0]) for a in args):
            return
        if not mark.exists():
            mark.write_text(str(os.getpid()))
            time.sleep(seconds)

    owner = importlib.import_module(where)
    *path, name = attr.split(".")
    if path == ["_committed"] and name == "append":  # a list: swap it for one that pauses in append
        class Pausing(list):
            def append(self, x):
                pause(x)
                super().append(x)

        owner._committed = Pausing(owner._committed)
        return
    for p in path:
        owner = getattr(owner, p)
    real = getattr(owner, name)

    def wrapper(*a, **k):
        if when == "before":
            pause(*a, *k.values())
            return real(*a, **k)
        r = real(*a, **k)
        pause(*a, *k.values())
        return r

    setattr(owner, name, wrapper)


if __name__ == "__main__":
    _install(os.environ["ARTYSIM_TEST_PAUSE"], Path(os.environ["ARTYSIM_TEST_MARK"]))
    from artysim.cli import main

    sys.argv[0] = "artysim"
    main()
