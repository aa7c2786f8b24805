"""Output that is never half-written: the target checked before any work, signals deferred while a
file is written, and the finished file moved into place in one rename. Every writer (results, merge,
sweep, plots) goes through ``AtomicFile`` (and a sweep's variants through ``TempDir``).

Temporary folders are artysim's own and say so: ``.artysim-XXXXXXXX.tmp`` made by ``tempfile.mkdtemp``
(unpredictable, exclusive, mode 0700) with an ``owner`` file inside (pid, host, creation time). A
process killed outright (SIGKILL, a node crash) cannot clean up; the next writer into the same folder
removes such stale folders of artysim's: ``owner`` says this host and its pid is no longer alive, or
another host and older than ``STALE_AGE_S``. Nothing else is ever removed (no ``owner`` file, another
user's folder, a link, a name of another pattern: left alone).

Signals: the rename is the point of no return. It runs with SIGINT and SIGTERM held back (and
delivered right after), so an interrupt is either before it (the temporary file is removed, the target
untouched) or after it (the target is complete, and ``committed()`` says so to the message the CLI
prints). A temporary folder is registered from the moment it exists, so that the CLI removes it on an
interrupt whatever line was running (``discard_all``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

from artysim.errors import OutputExistsError, ResultsError

PREFIX, SUFFIX = ".artysim-", ".tmp"
OWNER = "owner"
_MARK = "artysim temporary folder"
#: a temporary folder of another host (a shared file system) is stale only after this long: its
#: process cannot be asked, and a job may run for days
STALE_AGE_S = 7 * 24 * 3600
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_live: set[TempDir] = set()  # temporary folders that exist and are neither committed nor discarded
_committed: list[Path] = []  # targets renamed into place (in this process, since ``reset``)


def reset() -> None:
    """Forget what earlier commands in this process committed (the CLI calls it per command)."""
    _committed.clear()


def committed() -> list[Path]:
    """Targets renamed into place since ``reset`` and still there: complete files, whatever happened
    afterwards (a sweep's variant files, committed into its temporary folder, are gone with it)."""
    return [p for p in dict.fromkeys(_committed) if _exists(p)]


def discard_all() -> None:
    """Remove every temporary folder of this process that is still there (after an interrupt)."""
    for t in list(_live):
        t.discard()


def _exists(path: Path) -> bool:
    """A file, folder or link (even a dangling one) at ``path``."""
    return os.path.lexists(path)


def check_target(path: Path, force: bool) -> None:
    """Refuse before any work if the result cannot or must not be written."""
    path = Path(path)
    if _exists(path) and not force:
        raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder, expected a file path")
    parent = path.parent
    if not parent.exists():
        raise ResultsError(f"output folder {parent} does not exist")
    if not parent.is_dir():
        raise ResultsError(f"output folder {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ResultsError(f"output folder {parent} is not writable")


@contextlib.contextmanager
def held_signals():
    """SIGINT and SIGTERM held back for a few statements that must not be cut in two; one that
    arrives meanwhile is delivered (to the handler then in place) at the end. Handlers that ignore
    a signal stay; outside the main thread nothing can be held, and nothing is."""
    got: list[int] = []
    old: dict = {}

    def note(signum, frame):
        got.append(signum)

    for s in SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread
            h = signal.getsignal(s)
            if h is not None and h != signal.SIG_IGN:
                old[s] = signal.signal(s, note)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for s in dict.fromkeys(got):
            signal.raise_signal(s)


class DeferSignals:
    """SIGINT and SIGTERM while a results file is written: the first is noted and acted on between
    batches (``check`` raises KeyboardInterrupt), so that no exception is raised inside netCDF4, HDF5
    or a library that might swallow it; a second one interrupts at once. Either way the writer
    removes its temporary file. A signal noted but not acted on by the end (it came after the last
    ``check``, e.g. during the rename) is passed on to the handler in place before, so it is never
    lost. Signals that were ignored (e.g. in a background job) stay ignored."""

    def __enter__(self):
        self.received: int | None = None
        self._old: dict = {}
        for s in SIGNALS:
            with contextlib.suppress(ValueError):  # not in the main thread
                old = signal.getsignal(s)
                if old is not None and old != signal.SIG_IGN:
                    self._old[s] = signal.signal(s, self._note)
        return self

    def _note(self, signum, frame):
        if self.received is not None:
            self.received = None  # acted on now
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.received = signum

    def check(self) -> None:
        if self.received is not None:
            s, self.received = self.received, None
            raise KeyboardInterrupt(signal.Signals(s).name)

    def __exit__(self, exc_type, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}
        pending, self.received = self.received, None
        if pending is not None and exc_type is None:
            signal.raise_signal(pending)  # to the handler restored above
        return False


def _owner_text(purpose: str) -> str:
    return json.dumps({"what": _MARK, "purpose": purpose, "pid": os.getpid(), "host": socket.gethostname(),
                       "created": time.time()}) + "\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except (OSError, OverflowError, ValueError):
        return True  # cannot tell: keep the folder
    return True


def _is_stale(folder: Path, now: float) -> bool:
    """Whether ``folder`` is an artysim temporary folder of this user that no live process owns."""
    try:
        st = folder.lstat()
        import stat as st_mod

        if not st_mod.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return False
        owner = folder / OWNER
        ost = owner.lstat()
        if not st_mod.S_ISREG(ost.st_mode) or ost.st_size > 4096:
            return False
        info = json.loads(owner.read_text())
        if not isinstance(info, dict) or info.get("what") != _MARK:
            return False
        pid, host, created = int(info["pid"]), str(info["host"]), float(info["created"])
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return False
    if host == socket.gethostname():
        return pid != os.getpid() and not _pid_alive(pid)
    return now - created > STALE_AGE_S


def remove_stale(folder: Path) -> list[Path]:
    """Remove the stale artysim temporary folders directly in ``folder``; returns those removed."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if e.name.startswith(PREFIX) and e.name.endswith(SUFFIX) and _is_stale(Path(e.path), now):
            with contextlib.suppress(OSError):
                shutil.rmtree(e.path)
                removed.append(Path(e.path))
    return removed


class TempDir:
    """A private temporary folder of artysim's beside a target: mode 0700, an ``owner`` file, stale
    ones of earlier processes removed first, registered for ``discard_all`` from the moment it exists."""

    def __init__(self, parent: str | Path, purpose: str):
        parent = Path(parent)
        remove_stale(parent)
        with held_signals():  # made, marked and registered in one go: never an unregistered folder
            self.dir = Path(tempfile.mkdtemp(prefix=PREFIX, suffix=SUFFIX, dir=parent))
            _live.add(self)
            try:
                fd = os.open(self.dir / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(_owner_text(purpose))
            except BaseException:
                self.discard()
                raise

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        _live.discard(self)


class AtomicFile(TempDir):
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
        super().__init__(self.target.parent, purpose=f"writing {self.target.name}")
        self.path = self.dir / f"part{self.target.suffix}"

    def commit(self) -> Path:
        """Move the finished file into place (refusing a target that appeared meanwhile, without force).
        SIGINT/SIGTERM are held back from just before the rename until it is recorded."""
        with held_signals():
            if _exists(self.target) and not self.force:
                self.discard()
                raise OutputExistsError(f"{self.target} appeared while {self.doing}; use --force to overwrite it")
            os.replace(self.path, self.target)
            _committed.append(self.target)
            self.discard()
        return self.target
