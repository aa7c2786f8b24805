"""Crafted results files: a real artysim file copied with netCDF4, with attributes and variables dropped,
retyped, resized or corrupted on the way (the test material of class 11 of issue 11 and of the
results-file fuzzer). Each mutation is a small function of a ``Doc`` (the file's contents as plain
Python objects), so that tests can name them and the fuzzer can draw them."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import netCDF4
import numpy as np


@dataclass
class Var:
    dims: tuple
    dtype: object  # a numpy dtype or str
    data: np.ndarray | None  # None: not written (a huge variable is left to its fill value)
    attrs: dict = field(default_factory=dict)


@dataclass
class Doc:
    dims: dict
    vars: dict
    attrs: dict
    groups: list = field(default_factory=list)


def read(path: Path) -> Doc:
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        dims = {d: len(x) for d, x in nc.dimensions.items()}
        vs = {}
        for name, x in nc.variables.items():
            dtype = str if x.dtype is str else np.dtype(x.dtype)
            vs[name] = Var(tuple(x.dimensions), dtype, np.array(x[:], dtype=object if dtype is str else dtype),
                           {k: x.getncattr(k) for k in x.ncattrs() if k != "_FillValue"})
        attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
    return Doc(dims, vs, attrs)


def write(doc: Doc, path: Path) -> Path:
    """Write ``doc`` as netCDF-4; data that no longer fits its dimensions is cut or padded, and a variable
    over 64 MB is left unwritten (HDF5 stores no chunk of it: a small file claiming a huge array)."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for d, n in doc.dims.items():
            nc.createDimension(d, n)
        for g in doc.groups:
            nc.createGroup(g)
        for name, v in doc.vars.items():
            for d in v.dims:
                if d not in nc.dimensions:
                    nc.createDimension(d, 1)
            shape = tuple(len(nc.dimensions[d]) for d in v.dims)
            n = int(np.prod(shape, dtype=object)) if shape else 1
            big = n * (8 if v.dtype is str else np.dtype(v.dtype).itemsize) > 64 * 2**20
            kw = {}
            if v.dtype is not str and shape and all(shape):
                kw = dict(zlib=True, complevel=1,
                          chunksizes=tuple(max(1, min(s, 1024 if big else s)) for s in shape))
            x = nc.createVariable(name, v.dtype, v.dims, **kw)
            for k, val in v.attrs.items():
                x.setncattr(k, val)
            if big or v.data is None or n == 0:
                continue
            data = _fit(np.asarray(v.data), shape, v.dtype)
            if v.dtype is str:
                for idx in np.ndindex(*shape):
                    x[idx] = str(data[idx])
            else:
                x[...] = data
        for k, val in doc.attrs.items():
            nc.setncattr(k, val)
    return path


def _fit(a: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    """``a`` cut or padded (repeating its last values, or zeros) to ``shape``, cast to ``dtype``."""
    if a.ndim != len(shape):
        a = np.resize(a.ravel() if a.size else np.zeros(1), int(np.prod(shape, dtype=object)) or 1)
        a = a[: int(np.prod(shape))].reshape(shape) if all(shape) else np.zeros(shape)
    for ax, n in enumerate(shape):
        if a.shape[ax] > n:
            a = np.take(a, range(n), axis=ax)
        elif a.shape[ax] < n:
            pad = np.take(a, [a.shape[ax] - 1] * (n - a.shape[ax]), axis=ax) if a.shape[ax] else \
                np.zeros(tuple(n - 0 if i == ax else s for i, s in enumerate(a.shape)))
            a = np.concatenate([a, pad], axis=ax)
    if dtype is str:
        return a.astype(object)
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iu" and a.dtype.kind in "fc":
            a = np.nan_to_num(a.real if a.dtype.kind == "c" else a, nan=0, posinf=0, neginf=0)
        if a.dtype == object:
            a = np.array([_num(x) for x in a.ravel()]).reshape(a.shape)
        return a.astype(dtype)


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


#: (path, size, mtime) -> the file's Doc: a base file mutated a hundred times is read once
_READ: dict[tuple, Doc] = {}


def read_cached(path: Path) -> Doc:
    """A fresh deep copy of ``read(path)``, the file read once while it is unchanged (same size and mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _READ:
        _READ[key] = read(path)
    return copy.deepcopy(_READ[key])


def copy_with(src: Path, dst: Path, *mutations) -> Path:
    doc = read_cached(src)
    for m in mutations:
        m(doc)
    return write(doc, dst)


def corrupt_bytes(path: Path, rng: np.random.Generator, n: int = 8, *, region: tuple[float, float] = (0.3, 0.95)):
    """Overwrite ``n`` random bytes in the given fraction of the file (past the superblock)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for _ in range(n):
            f.seek(int(rng.uniform(*region) * size))
            f.write(bytes([int(rng.integers(0, 256))]))


# -- named mutations ----------------------------------------------------------------------------------

def drop_attr(name):
    return lambda d: d.attrs.pop(name, None)


def set_attr(name, value):
    def m(d):
        d.attrs[name] = value
    return m


def drop_var(name):
    return lambda d: d.vars.pop(name, None)


def retype(name, dtype):
    def m(d):
        v = d.vars[name]
        v.dtype = dtype
    return m


def redim(name, dims):
    def m(d):
        d.vars[name].dims = tuple(dims)
    return m


def resize(dim, n):
    def m(d):
        d.dims[dim] = n
    return m


def set_values(name, fn):
    def m(d):
        v = d.vars[name]
        v.data = fn(np.array(v.data))
    return m
