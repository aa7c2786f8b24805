"""The installed version of artysim (a leaf module: results files record it, and nothing here imports more)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("artysim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
