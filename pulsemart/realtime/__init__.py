"""The real-time lane: long-lived workers in the consumer group `pulsemart-realtime` that land,
decide and fold each micro-batch in one PostgreSQL transaction (see docs/lanes.md).

No Dagster here: the worker reports runless materializations and check evaluations to the
Dagster webserver over HTTP.
"""
