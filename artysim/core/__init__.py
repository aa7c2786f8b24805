"""The numeric core: the compiled kernel and its phases, random streams and exact samplers, histogram
bins, and ``layout``, the positions every layer above agrees on. Imports numpy and numba, nothing of
artysim above it."""
