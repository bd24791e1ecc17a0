"""Cloud profiles: object storage (local folder, S3, ADLS2/Blob), Kafka security per profile
(MSK SCRAM or IAM, Event Hubs) and the redaction that keeps their secrets out of sight.

Chosen by settings only (PULSEMART_PROFILE and friends, read by pulsemart.config); see
docs/deploy.md. No Dagster here.
"""

from pulsemart.cloud.objectstore import (
    BlobStore,
    LocalStore,
    ObjectStore,
    S3Store,
    mlflow_artifact_location,
    mlflow_options,
    object_store,
)
from pulsemart.cloud.redact import RedactedConfig, redact_text, redact_url, register_secret

__all__ = [
    "BlobStore",
    "LocalStore",
    "ObjectStore",
    "RedactedConfig",
    "S3Store",
    "mlflow_artifact_location",
    "mlflow_options",
    "object_store",
    "redact_text",
    "redact_url",
    "register_secret",
]
