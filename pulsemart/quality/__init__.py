"""The rule engine: every raw record gets one decision — accepted, fixed, quarantined (or held
while the catalog catches up) — with a score, a confidence and an explanation.

Pure and in memory (no database, Kafka or Dagster). See docs/quality.md.
"""

from pulsemart.quality.catalog import CatalogState, ProductState
from pulsemart.quality.decide import ACCEPTED, FIXED, HELD, QUARANTINED
from pulsemart.quality.engine import RAW_COLUMNS, run_batch
from pulsemart.quality.lines import quarantined_lines
from pulsemart.quality.result import EngineResult
from pulsemart.quality.rules import RuleSet, RuleSetError, load_rules

__all__ = [
    "ACCEPTED",
    "FIXED",
    "HELD",
    "QUARANTINED",
    "RAW_COLUMNS",
    "CatalogState",
    "EngineResult",
    "ProductState",
    "RuleSet",
    "RuleSetError",
    "load_rules",
    "quarantined_lines",
    "run_batch",
]
