"""pulsemart: real-time e-commerce personalization on Kafka, PostgreSQL and Dagster.

The core package knows nothing of Dagster; `orchestration/` and `sensors/` wire it in.
"""

__version__ = "0.1.0"
