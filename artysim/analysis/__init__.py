"""Reading results back: statistics helpers, summary, compare, sensitivity, plots and the ``ds.artysim``
accessor. Imports results and the model; never numba."""
