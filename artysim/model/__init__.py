"""Scenario -> model: distributions, the scenario schema and its validation, the model built once from a
scenario (parameters, kernel tables, copula), and sampling designs. Imports the core only."""
