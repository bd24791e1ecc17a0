"""`pulsemart bench`: throughput, memory and latency benchmarks with same-run anchors.

Every figure is reported beside an anchor measured in the same process on the same bytes
(bare kafka-python, bare COPY), because absolute rates on a shared laptop or CI box mean
little while a ratio to the floor underneath survives a change of machine.
Modules: `measure` (figures and ratios), `report` (BENCHMARKS.md sections), `machine`,
`stack` (a throw-away embedded stack), `produce`, `ingest`, `memory`, `latency`.
"""
