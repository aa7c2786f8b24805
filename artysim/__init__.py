"""artysim: Monte Carlo simulation of artillery ammunition logistics."""

from artysim.version import __version__

__all__ = ["__version__", "open_results", "plots", "run_sharded"]


def __getattr__(name: str):
    """``artysim.open_results``, ``artysim.plots`` and ``artysim.run_sharded`` are imported on first use:
    the CLI's `run` should not pay for xarray or matplotlib."""
    if name == "run_sharded":
        from artysim.jobs.executor import run_sharded

        return run_sharded
    if name == "open_results":
        from artysim.results.reader import open_results

        return open_results
    if name == "plots":
        from artysim.analysis import plots

        return plots
    raise AttributeError(f"module 'artysim' has no attribute {name!r}")


def _register_accessor_when_xarray_loads() -> None:
    """``ds.artysim`` exists as soon as both artysim and xarray are imported, in either order,
    without importing xarray here (0.5 s that every quiet `artysim run` would pay)."""
    import importlib.abc
    import importlib.util
    import sys

    if "xarray" in sys.modules:
        import artysim.analysis.accessor  # noqa: F401
        return

    class _Hook(importlib.abc.MetaPathFinder):
        busy = False

        def find_spec(self, fullname, path, target=None):
            if fullname != "xarray" or self.busy:
                return None
            self.busy = True  # let the other finders locate xarray
            try:
                spec = importlib.util.find_spec("xarray")
            finally:
                self.busy = False
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                if self in sys.meta_path:  # a find_spec without import leaves the hook in place
                    sys.meta_path.remove(self)
                import artysim.analysis.accessor  # noqa: F401

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Hook())


_register_accessor_when_xarray_loads()
