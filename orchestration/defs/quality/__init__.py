"""Quality layer definitions: the rule engine's decisions and their contract checks."""

import dagster as dg

from orchestration.defs.quality.assets import quality_decisions

defs = dg.Definitions(assets=[quality_decisions])
