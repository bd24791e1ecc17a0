"""Runs one planned ingest batch in its own process, so a test can SIGKILL it mid-run.

Usage: python tests/integration/run_batch_process.py '<RunRequest run_config and tags as JSON>'
"""

import json
import sys

# The streaming code location, as a sensor-lane run loads it (no dbt or ML imports to wait for).
from orchestration.streaming import defs

request = json.loads(sys.argv[1])
config = {**request["run_config"], "loggers": {"console": {"config": {"log_level": "ERROR"}}}}
result = defs.resolve_job_def(request["job_name"]).execute_in_process(
    run_config=config, tags=request["tags"], raise_on_error=False
)
sys.exit(0 if result.success else 1)
