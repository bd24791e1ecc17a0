"""The embedded stack: a real PostgreSQL server and a Kafka-protocol broker on this machine.

Started by `pulsemart services up` (and by the test suite's session fixture). A service whose
setting points elsewhere is never started here, so the same commands work against real
infrastructure.
"""
