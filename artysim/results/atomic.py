"""Output that is never half-written: the target checked before any work, signals deferred while a
file is written, and the finished file moved into place in one rename. Every writer (results, merge,
sweep, plots) goes through ``AtomicFile``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

from artysim.errors import OutputExistsError, ResultsError


def check_target(path: Path, force: bool) -> None:
    """Refuse before any work if the result cannot or must not be written."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    if path.exists() and path.is_dir():
        raise OutputExistsError(f"{path} is a folder, expected a file path")
    parent = path.parent
    if not parent.exists():
        raise ResultsError(f"output folder {parent} does not exist")
    if not parent.is_dir():
        raise ResultsError(f"output folder {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ResultsError(f"output folder {parent} is not writable")


class DeferSignals:
    """SIGINT and SIGTERM while a results file is written: the first is noted and acted on between
    batches (``check`` raises KeyboardInterrupt), so that no exception is raised inside netCDF4, HDF5
    or a library that might swallow it; a second one interrupts at once. Either way the writer
    removes its temporary file. Signals that were ignored (e.g. in a background job) stay ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.received: int | None = None
        self._old: dict = {}
        for s in self.SIGNALS:
            with contextlib.suppress(ValueError):  # not in the main thread
                old = signal.getsignal(s)
                if old is not None and old != signal.SIG_IGN:
                    self._old[s] = signal.signal(s, self._note)
        return self

    def _note(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.received = signum

    def check(self) -> None:
        if self.received is not None:
            raise KeyboardInterrupt(signal.Signals(self.received).name)

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}
        return False




class AtomicFile:
    """A file written in a private temporary folder beside its target, then renamed onto the target.

    The folder is made by ``tempfile.mkdtemp``: an unpredictable name, created exclusively, mode 0700,
    so nobody else can plant a file or a link in it for the writer to follow. Its name does not grow
    with the target's, so a long legal file name never makes an illegal temporary one. ``commit`` renames
    the finished file onto the target (a link planted there is replaced, not followed); ``discard``
    removes the folder and whatever it holds."""

    def __init__(self, target: str | Path, *, force: bool, doing: str = "running"):
        self.target = Path(target)
        self.force = force
        self.doing = doing
        self.dir = Path(tempfile.mkdtemp(prefix=".artysim-", suffix=".tmp", dir=self.target.parent))
        self.path = self.dir / f"part{self.target.suffix}"

    def commit(self) -> Path:
        """Move the finished file into place (refusing a target that appeared meanwhile, without force)."""
        if self.target.exists() and not self.force:
            self.discard()
            raise OutputExistsError(f"{self.target} appeared while {self.doing}; use --force to overwrite it")
        os.replace(self.path, self.target)
        self.discard()
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
