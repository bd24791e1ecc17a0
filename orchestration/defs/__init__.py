"""Per-layer Dagster definitions: one sub-package per layer of the data flow."""
