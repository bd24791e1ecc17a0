"""Both code locations in one Definitions, for tests and tools that want the whole graph in
one process. Deployments load the two locations separately (workspace.yaml), so a streaming
run never imports the analytics stack; this module imports both."""

import dagster as dg

from orchestration import analytics, streaming

defs = dg.Definitions.merge(streaming.defs, analytics.defs)
