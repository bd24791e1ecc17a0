"""The quality sensor: launches a quality run when landed raw records wait for a decision.

It asks PostgreSQL how many raw records are past `quality.progress` and how many held records
are past their timeout, and never runs the engine itself.
"""

import dagster as dg

from sensors.downstream import single_run_sensor


def _waiting(conn) -> dict[str, str]:
    # Imported here: the rule engine loads pandas and pandera, which the streaming location's
    # import (paid by the code server and every run) need not load.
    from pulsemart.quality import load_rules
    from pulsemart.store.quality import waiting_for_decision

    undecided, expired = waiting_for_decision(conn, load_rules().settings.hold_timeout_seconds)
    if not undecided and not expired:
        return {}
    return {"pulsemart/undecided": str(undecided), "pulsemart/held_expired": str(expired)}


def build_quality_sensor(job) -> dg.SensorDefinition:
    return single_run_sensor(
        "quality_sensor",
        job,
        "Requests a quality run when landed raw records wait for their decision.",
        _waiting,
        "no raw record waits for a decision",
    )
