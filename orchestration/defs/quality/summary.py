"""Adds up the rule engine's passes of one run into the metadata the UI shows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pulsemart.store.quality import DecidedBatch

FINAL = ("accepted", "fixed", "quarantined")


@dataclass
class RunSummary:
    new_records: int = 0  # raw records decided for the first time in this run
    decided: Counter = field(default_factory=Counter)  # final decisions made in this run
    held: int = 0  # records still waiting for the catalog after the run
    rule_counts: Counter = field(default_factory=Counter)
    quarantined_by_contract: Counter = field(default_factory=Counter)
    contract_failures: Counter = field(
        default_factory=Counter
    )  # in released events: must stay empty
    samples: list = field(default_factory=list)
    versions: set = field(default_factory=set)

    def add(self, batch: DecidedBatch) -> None:
        result = batch.result
        if result is None:  # a pass that found nothing to decide (not passed on by the store)
            return
        self.new_records += batch.new_records
        self.versions.add(result.rule_set_version)
        self.decided.update({name: result.conservation[name] for name in FINAL})
        re_decided_held = batch.new_records < result.conservation["in"]
        # A pass that re-decided the held records reports all of them still held; a pass over
        # new records only reports the ones it newly held.
        self.held = result.conservation["held"] + (0 if re_decided_held else self.held)
        meta = result.metadata()
        self.rule_counts.update(meta["rule_counts"])
        self.quarantined_by_contract.update(meta["failure_counts"])
        # Imported here: the contracts load pandas and pandera, which the streaming location's
        # import (paid by the code server and every run) need not load.
        from pulsemart.store.contract_gate import contract_failures

        failures, samples = contract_failures(result.clean["payload"].tolist())
        self.contract_failures.update(failures)
        self.samples.extend(samples[: 5 - len(self.samples)])

    def totals(self) -> dict:
        return {
            "new_records": self.new_records,
            **{name: self.decided[name] for name in FINAL},
            "held": self.held,
        }

    @property
    def rule_set_version(self) -> str:
        return ", ".join(sorted(self.versions)) or "-"
