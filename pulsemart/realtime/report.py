"""What the worker tells Dagster: runless materializations and check evaluations, aggregated.

A `Window` adds up the micro-batches of a few seconds; `events()` turns it into at most one
materialization per asset (the raw, quality and serving assets of the sensor lane, by the
same keys) and one evaluation of each quality check. `DagsterReporter` posts them to the
Dagster webserver's REST endpoints for external processes, so the worker imports nothing
from Dagster and reports the same way locally, on ECS and on AKS.
"""

from __future__ import annotations

import logging
import queue
import statistics
import threading
from collections import Counter
from dataclasses import dataclass, field

import httpx

from pulsemart.config import TOPIC_PARTITIONS
from pulsemart.serving.fold import FOLDED_TABLES
from pulsemart.store.contract_gate import contract_failures

log = logging.getLogger(__name__)

FINAL = ("accepted", "fixed", "quarantined")
QUALITY_ASSETS = ("events_clean", "order_lines_clean", "quarantine")
SERVING_ASSETS = tuple(t for t in FOLDED_TABLES if t != "progress")
MAX_SAMPLES = 10_000  # latencies kept per window; a window reported late must not grow forever


def raw_asset(topic: str) -> list[str]:
    return ["raw", topic.replace(".", "_")]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 4)


@dataclass
class Window:
    """The micro-batches committed since the last report."""

    batches: int = 0
    records: Counter = field(default_factory=Counter)  # per topic
    ranges: dict = field(default_factory=dict)  # (topic, partition) -> [start, next]
    new_records: int = 0
    decided: Counter = field(default_factory=Counter)
    held: int = 0
    rule_counts: Counter = field(default_factory=Counter)
    quarantined_by_contract: Counter = field(default_factory=Counter)
    payloads: list = field(default_factory=list)  # released events, for the contract check
    unbalanced: int = 0  # engine results whose decisions did not add up to their input
    batch_seconds: list = field(default_factory=list)
    freshness_seconds: list = field(default_factory=list)  # produce -> commit, per batch
    serving: dict = field(default_factory=dict)
    lag: dict = field(default_factory=dict)  # (topic, partition) -> records behind

    @property
    def empty(self) -> bool:
        return self.batches == 0

    def add(self, outcome, freshness_s: float | None) -> None:
        self.batches += 1
        for part in outcome.landed:
            self.records[part.topic] += part.records
            span = self.ranges.setdefault(
                (part.topic, part.partition), [part.start_offset, part.next_offset]
            )
            span[0], span[1] = min(span[0], part.start_offset), max(span[1], part.next_offset)
        if len(self.batch_seconds) < MAX_SAMPLES:
            self.batch_seconds.append(outcome.seconds)
            if freshness_s is not None:
                self.freshness_seconds.append(freshness_s)
        decided = outcome.decided
        if decided is not None and decided.result is not None:
            result = decided.result
            c = result.conservation
            self.new_records += decided.new_records
            self.decided.update({name: c[name] for name in FINAL})
            # A pass that decided the held records again reports all still held; one over new
            # records only, the ones it newly held.
            self.held = c["held"] + (0 if decided.new_records < c["in"] else self.held)
            if c["in"] != sum(c[name] for name in (*FINAL, "held")):
                self.unbalanced += 1
            meta = result.metadata()
            self.rule_counts.update(meta["rule_counts"])
            self.quarantined_by_contract.update(meta["failure_counts"])
            if len(self.payloads) < MAX_SAMPLES * 5:
                self.payloads.extend(result.clean["payload"].tolist())
        served = outcome.served
        if served is not None and served.batches:
            self.serving = {
                "events_folded": self.serving.get("events_folded", 0) + served.events,
                "last_quality_batch": served.to_batch,
                "max_event_time": served.max_event_time.isoformat()
                if served.max_event_time
                else None,
                "event_time_lag_seconds": served.event_time_lag_s(),
            }

    def latency_metadata(self) -> dict:
        return {
            "batches": self.batches,
            "batch_seconds_p50": _percentile(self.batch_seconds, 50),
            "batch_seconds_p95": _percentile(self.batch_seconds, 95),
            "freshness_seconds_p50": _percentile(self.freshness_seconds, 50),
            "freshness_seconds_p95": _percentile(self.freshness_seconds, 95),
            "lane": "real-time",
        }

    def events(self, gaps: list[dict]) -> tuple[list[dict], list[dict]]:
        """(materializations, check evaluations) as the webserver's JSON bodies. `gaps`: the
        landed ranges' raw records whose decisions do not add up (should be none)."""
        common = self.latency_metadata()
        materializations = []
        for topic in TOPIC_PARTITIONS:
            if not self.records[topic]:
                continue
            ranges = {
                f"{p}": f"{s}..{n}" for (t, p), (s, n) in sorted(self.ranges.items()) if t == topic
            }
            lag = sum(v for (t, _), v in self.lag.items() if t == topic)
            materializations.append(
                {
                    "asset_key": raw_asset(topic),
                    "metadata": {
                        **common,
                        "records": self.records[topic],
                        "offset_ranges": ranges,
                        "lag": lag,
                    },
                }
            )
        decisions = {
            "new_records": self.new_records,
            **{n: self.decided[n] for n in FINAL},
            "held": self.held,
        }
        if self.new_records or any(self.decided.values()):
            materializations.append(
                {
                    "asset_key": ["quality", "events_clean"],
                    "metadata": {**common, **decisions, "rule_counts": dict(self.rule_counts)},
                }
            )
            materializations.append(
                {"asset_key": ["quality", "order_lines_clean"], "metadata": common}
            )
            materializations.append(
                {
                    "asset_key": ["quality", "quarantine"],
                    "metadata": {
                        **common,
                        "quarantined": self.decided["quarantined"],
                        "quarantined_by_contract": dict(self.quarantined_by_contract),
                    },
                }
            )
        if self.serving:
            for name in SERVING_ASSETS:
                materializations.append(
                    {"asset_key": ["serving", name], "metadata": {**common, **self.serving}}
                )
        checks = []
        if self.new_records or any(self.decided.values()):
            failures, samples = contract_failures(self.payloads)
            checks.append(
                {
                    "asset_key": ["quality", "events_clean"],
                    "check_name": "contract",
                    "passed": not failures,
                    "severity": "ERROR",
                    "metadata": {
                        "failure_counts": failures,
                        "samples": samples,
                        "events_checked": len(self.payloads),
                        "lane": "real-time",
                    },
                }
            )
            checks.append(
                {
                    "asset_key": ["quality", "events_clean"],
                    "check_name": "conservation",
                    "passed": not gaps and not self.unbalanced,
                    "severity": "ERROR",
                    "metadata": {
                        **decisions,
                        "partitions_out_of_balance": gaps,
                        "unbalanced_engine_results": self.unbalanced,
                        "lane": "real-time",
                    },
                }
            )
        return materializations, checks


class DagsterReporter:
    """Posts windows to the webserver at `url` from a thread of its own, so a slow or absent
    Dagster never delays a batch. It says once when it cannot reach Dagster; while it cannot,
    it keeps only the newest unsent window (its metadata are a few seconds' aggregate)."""

    def __init__(self, url: str, timeout_s: float = 5.0, backlog: int = 10):
        self.url = url
        self._client = httpx.Client(base_url=url, timeout=timeout_s)
        self._failing = False
        self._queue: queue.Queue = queue.Queue(maxsize=backlog)
        self._unsent: tuple[list, list] | None = None
        self._thread = threading.Thread(target=self._run, name="dagster-reporter", daemon=True)
        self._thread.start()

    def submit(self, window: Window, gaps: list[dict]) -> None:
        try:
            self._queue.put_nowait((window, gaps))
        except queue.Full:
            log.warning(
                "Dagster reports are %d windows behind; dropping this one", self._queue.qsize()
            )

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            window, gaps = item
            try:
                events = window.events(gaps)
            except Exception:  # a defect in a report must not stop the reporting
                log.exception("could not build the Dagster report")
                continue
            if self._unsent is not None and not self.send(*self._unsent):
                self._unsent = events
                continue
            self._unsent = None if self.send(*events) else events

    def send(self, materializations: list[dict], checks: list[dict]) -> bool:
        try:
            for body in materializations:
                self._client.post("/report_asset_materialization/", json=body).raise_for_status()
            for body in checks:
                self._client.post("/report_asset_check/", json=body).raise_for_status()
        except httpx.HTTPError as exc:
            if not self._failing:
                log.warning(
                    "cannot report to Dagster at %s (%s); the lane carries on", self.url, exc
                )
            self._failing = True
            return False
        if self._failing:
            log.warning("reporting to Dagster at %s again", self.url)
        self._failing = False
        return True

    def close(self, timeout_s: float = 3.0) -> None:
        """Send what is queued, for at most `timeout_s` (a stopping worker must exit soon)."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        self._thread.join(timeout_s)
        self._client.close()
