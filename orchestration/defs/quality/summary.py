"""Adds up the rule engine's passes of one run into the metadata the UI shows."""

from collections import Counter
from dataclasses import dataclass, field

from pulsemart.quality import EngineResult
from pulsemart.store.contract_gate import contract_failures

DECISIONS = ("in", "accepted", "fixed", "quarantined", "held")


@dataclass
class RunSummary:
    totals: Counter = field(default_factory=Counter)
    rule_counts: Counter = field(default_factory=Counter)
    quarantined_by_contract: Counter = field(default_factory=Counter)
    contract_failures: Counter = field(default_factory=Counter)  # in released events: must stay empty
    samples: list = field(default_factory=list)
    versions: set = field(default_factory=set)

    def add(self, result: EngineResult) -> None:
        self.versions.add(result.rule_set_version)
        self.totals.update({name: result.conservation[name] for name in DECISIONS})
        meta = result.metadata()
        self.rule_counts.update(meta["rule_counts"])
        self.quarantined_by_contract.update(meta["failure_counts"])
        failures, samples = contract_failures(result.clean["payload"].tolist())
        self.contract_failures.update(failures)
        self.samples.extend(samples[: 5 - len(self.samples)])

    @property
    def rule_set_version(self) -> str:
        return ", ".join(sorted(self.versions)) or "-"
