"""Dagster sensors: they read offsets and plan runs; they never do heavy work themselves."""
