"""A deterministic simulator of the shop's event stream, with optional recorded dirt.

`generate(n_events, seed, dirty_rate)` yields `SimulatedEvent`s ready for
`pulsemart.stream.producer.produce_events`. Modules: `catalog` (products), `customers`
(tastes and session behaviour), `world` (the shop over time), `dirt` (the corruption
taxonomy), `generator` (records and truth).
"""

from pulsemart.stream.simulator.dirt import CORRUPTIONS
from pulsemart.stream.simulator.generator import DEFAULT_START_TIME, SimulatedEvent, generate

__all__ = ["CORRUPTIONS", "DEFAULT_START_TIME", "SimulatedEvent", "generate"]
