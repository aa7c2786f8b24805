"""artysim: Monte Carlo simulation of artillery ammunition logistics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("artysim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
