"""Quality layer definitions: the rule engine's decisions, their contract checks, their job."""

import dagster as dg

from orchestration.defs.quality.assets import DECIDE_QUALITY_JOB, quality_decisions

defs = dg.Definitions(assets=[quality_decisions], jobs=[DECIDE_QUALITY_JOB])
