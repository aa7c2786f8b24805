"""Work on a scenario: run, sweep, SLURM job arrays, and the resource guard that refuses what would not
fit. Imports every layer below."""
