"""The Dagster code location of pulsemart: definitions.py gathers the per-layer defs."""
