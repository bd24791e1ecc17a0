"""Object stores by profile, the archive's key layout, MLflow's artifact root, and redaction."""

import pyarrow.parquet as pq
import pytest

from pulsemart.cloud import (
    BlobStore,
    LocalStore,
    S3Store,
    mlflow_artifact_location,
    mlflow_options,
    object_store,
    redact_text,
    redact_url,
    register_secret,
)
from pulsemart.config import load_settings
from pulsemart.stream.archive import ARCHIVE_SCHEMA, archive_key, to_parquet

SERVICES = {
    "PULSEMART_DATABASE_URL": "postgresql://pulsemart@db.internal/pulsemart",
    "PULSEMART_KAFKA_BOOTSTRAP": "kafka.internal:9092",
}
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
AWS = {
    **SERVICES,
    "PULSEMART_PROFILE": "aws",
    "PULSEMART_S3_BUCKET": "shop-lake",
    "PULSEMART_S3_ENDPOINT_URL": "http://127.0.0.1:5000",
}
AZURE = {
    **SERVICES,
    "PULSEMART_PROFILE": "azure",
    "PULSEMART_ADLS_CONTAINER": "lake",
    "AZURE_STORAGE_CONNECTION_STRING": AZURITE,
}


def test_local_store_round_trip_and_listing(tmp_path):
    store = LocalStore(tmp_path / "archive")
    uri = store.put("topic=shop.events/date=2024-05-01/batch-7.parquet", b"one")
    store.put("topic=shop.events/date=2024-05-01/batch-7.parquet", b"two")  # idempotent overwrite
    assert uri == (tmp_path / "archive/topic=shop.events/date=2024-05-01/batch-7.parquet").as_uri()
    assert store.get("topic=shop.events/date=2024-05-01/batch-7.parquet") == b"two"
    assert store.exists("topic=shop.events/date=2024-05-01/batch-7.parquet")
    assert not store.exists("topic=shop.events/date=2024-05-01/batch-8.parquet")
    assert store.list("topic=shop.events/") == ["topic=shop.events/date=2024-05-01/batch-7.parquet"]
    with pytest.raises(ValueError, match="leaves the store"):
        store.put("../outside", b"x")


def test_the_profile_alone_picks_the_store(tmp_path):
    local = object_store(load_settings({"PULSEMART_HOME": str(tmp_path)}))
    assert isinstance(local, LocalStore) and local.root == tmp_path / "archive"
    s3 = object_store(load_settings(AWS))
    assert isinstance(s3, S3Store) and s3.uri("a/b") == "s3://shop-lake/archive/a/b"
    assert s3.client.meta.endpoint_url == "http://127.0.0.1:5000"
    blob = object_store(load_settings(AZURE))
    assert isinstance(blob, BlobStore)
    assert blob.uri("a/b") == "http://127.0.0.1:10000/devstoreaccount1/lake/archive/a/b"


def test_mlflow_artifact_root_follows_the_profile(tmp_path):
    assert mlflow_artifact_location(load_settings({"PULSEMART_HOME": str(tmp_path)})) is None
    assert mlflow_options(load_settings(AWS)) == {
        "artifact_location": "s3://shop-lake/mlflow",
        "s3_endpoint_url": "http://127.0.0.1:5000",
    }
    assert mlflow_artifact_location(load_settings(AZURE)) == (
        "wasbs://lake@devstoreaccount1.blob.core.windows.net/mlflow"
    )


def test_archive_keys_are_hive_partitioned_by_topic_and_date():
    from datetime import date

    assert archive_key("shop.events", date(2024, 5, 1), 42) == (
        "topic=shop.events/date=2024-05-01/batch-42.parquet"
    )


def test_parquet_bytes_keep_the_schema():
    import io

    import pyarrow as pa

    table = pa.Table.from_pylist([], schema=ARCHIVE_SCHEMA)
    assert pq.read_table(io.BytesIO(to_parquet(table))).schema.equals(ARCHIVE_SCHEMA)


def test_redaction_masks_connection_string_keys_urls_and_registered_secrets():
    register_secret("registered-Secret-1")
    text = redact_text(
        "failed: AccountKey=abc/def==;EndpointSuffix=x SharedAccessKey=zzz "
        "postgresql://u:pw@h/db and registered-Secret-1 and sig=s1g&x=1"
    )
    for secret in ("abc/def==", "zzz", ":pw@", "registered-Secret-1", "s1g"):
        assert secret not in text
    assert "EndpointSuffix=x" in text
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("http://127.0.0.1:10000/devstoreaccount1") == (
        "http://127.0.0.1:10000/devstoreaccount1"
    )
