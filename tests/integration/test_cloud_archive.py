"""The cloud profiles against real protocol peers on loopback, started here: moto's S3 server
and Azurite's Blob service (ADLS Gen2's Blob endpoint). Each profile archives an ingest batch
and keeps MLflow artifacts in its store; only settings change between them, never code.

Azurite comes from npm (`make azurite`, which `make test` runs); without it this module fails
unless PULSEMART_SKIP_AZURITE=1.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from orchestration.definitions import defs
from orchestration.defs.ingest.assets import INGEST_JOBS, raw_op_name
from orchestration.defs.ingest.requests import run_request_for
from pulsemart.cloud import mlflow_options, object_store
from pulsemart.config import load_settings
from pulsemart.local.stack import database_url
from pulsemart.stream.archive import ARCHIVE_SCHEMA, owed_count, retry_owed
from pulsemart.stream.planner import PlannedBatch
from tests.integration.helpers import free_port, produce_raw, read_topic
from tests.mlflow_state import mlflow_state_restored

pytestmark = [
    pytest.mark.integration,
    # Raised inside MLflow and the Azure SDK, not by pulsemart.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:azure.*"),
]
TOPIC = "shop.events"
ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = ROOT / ".azurite/node_modules/.bin/azurite-blob"
# Azurite's documented development account (public, the same in every installation).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SASL_PASSWORD = "never-Shown-sasl-pa55word"
PROFILE_VARIABLES = (
    "PULSEMART_PROFILE",
    "PULSEMART_S3_BUCKET",
    "PULSEMART_S3_ENDPOINT_URL",
    "PULSEMART_ADLS_CONTAINER",
    "PULSEMART_ADLS_ACCOUNT",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_CLIENT_ID",
    "PULSEMART_ARCHIVE",
    "PULSEMART_ARCHIVE_DIR",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def _wait_for_port(port: int, process=None, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the server exited with {process.returncode}: "
                f"{process.stderr.read().decode(errors='replace')}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        _wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def azurite_connection_string(tmp_path_factory):
    binary = AZURITE_BIN if AZURITE_BIN.exists() else shutil.which("azurite-blob")
    if binary is None:
        if os.environ.get("PULSEMART_SKIP_AZURITE") == "1":
            pytest.skip("Azurite is not installed and PULSEMART_SKIP_AZURITE=1")
        pytest.fail(
            "Azurite is not installed: `make test` installs it (`make azurite`: npm "
            "install --prefix .azurite azurite@3); set PULSEMART_SKIP_AZURITE=1 to skip "
            "the Azure tests",
            pytrace=False,
        )
    port = free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_for_port(port, process)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _profile_env(monkeypatch, settings, **variables) -> None:
    """The session's embedded PostgreSQL and broker, named as a cloud deployment names its
    managed ones, plus the profile's own variables."""
    for name in PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULSEMART_DATABASE_URL", database_url(settings))
    monkeypatch.setenv("PULSEMART_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    # A SASL password the client ignores on the plaintext development broker: it must still
    # never surface in metadata or logs.
    monkeypatch.setenv("PULSEMART_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.setenv("PULSEMART_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PULSEMART_KAFKA_SASL_USERNAME", "pulsemart")
    monkeypatch.setenv("PULSEMART_KAFKA_SASL_PASSWORD", SASL_PASSWORD)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aws(monkeypatch, settings, moto_endpoint):
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"shop-lake-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    _profile_env(
        monkeypatch,
        settings,
        PULSEMART_PROFILE="aws",
        PULSEMART_S3_BUCKET=bucket,
        PULSEMART_S3_ENDPOINT_URL=moto_endpoint,
    )
    return load_settings()


@pytest.fixture
def azure(monkeypatch, settings, azurite_connection_string):
    from azure.storage.blob import BlobServiceClient

    container = f"lake-{os.urandom(4).hex()}"
    BlobServiceClient.from_connection_string(azurite_connection_string).create_container(container)
    _profile_env(
        monkeypatch,
        settings,
        PULSEMART_PROFILE="azure",
        PULSEMART_ADLS_CONTAINER=container,
        AZURE_STORAGE_CONNECTION_STRING=azurite_connection_string,
    )
    return load_settings()


def _ingest_one_batch(settings, count: int = 300):
    """Produce `count` records to one partition and land them with the ingest job, as the
    sensor's run would; returns (run result, materialization metadata)."""
    produce_raw(
        settings,
        TOPIC,
        [json.dumps({"event_id": f"e{i}", "n": i}).encode() for i in range(count)],
        keys=["one-customer"] * count,
    )
    partition = read_topic(settings, TOPIC)[0].partition
    batch = PlannedBatch(TOPIC, partition, 0, 10_000, 0)
    request = run_request_for(batch, INGEST_JOBS[TOPIC].name, max_seconds=2)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(INGEST_JOBS[TOPIC].name).execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags
    )
    materialization = result.asset_materializations_for_node(raw_op_name(TOPIC))[0]
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    logs = "\n".join(str(entry) for entry in instance.all_logs(result.run_id))
    return result, metadata, logs


def _assert_archived_exactly(db, store, metadata) -> None:
    """The archived object holds the batch's raw rows, byte for byte, under its Hive path."""
    assert metadata["archive_status"] == "archived", metadata
    batch_id = metadata["batch_id"]
    keys = [
        key for key in store.list(f"topic={TOPIC}/") if key.endswith(f"/batch-{batch_id}.parquet")
    ]
    assert len(keys) == 1 and metadata["archive_uri"] == store.uri(keys[0])
    table = pq.read_table(io.BytesIO(store.get(keys[0])))
    assert table.schema.equals(ARCHIVE_SCHEMA)
    stored = db.execute(
        'select "partition", "offset", key, value, headers::text, kafka_timestamp, '
        'ingested_at from raw.events where batch_id = %s order by "offset"',
        (batch_id,),
    ).fetchall()
    columns = ("partition", "offset", "key", "value", "headers", "kafka_timestamp", "ingested_at")
    archived = list(zip(*(table[name].to_pylist() for name in columns), strict=True))
    assert archived == [(p, o, bytes(k), bytes(v), h, ts, at) for p, o, k, v, h, ts, at in stored]
    assert metadata["records"] == len(stored) == table.num_rows
    day = db.execute(
        "select (min(ingested_at) at time zone 'UTC')::date from raw.events where batch_id = %s",
        (batch_id,),
    ).fetchone()[0]
    assert keys[0] == f"topic={TOPIC}/date={day.isoformat()}/batch-{batch_id}.parquet"
    (status,) = db.execute(
        "select status from ingest.archive_log where batch_id = %s", (batch_id,)
    ).fetchone()
    db.commit()
    assert status == "archived"


def _assert_no_secret(texts, secrets) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_local_profile_archives_a_batch_readable_as_a_hive_dataset(fresh_stream, db, monkeypatch):
    _profile_env(monkeypatch, fresh_stream)
    for name in ("PULSEMART_DATABASE_URL", "PULSEMART_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name)
    settings = load_settings()
    _, metadata, _ = _ingest_one_batch(settings)
    store = object_store(settings)
    _assert_archived_exactly(db, store, metadata)
    dataset = ds.dataset(settings.archive_dir, format="parquet", partitioning="hive")
    rows = dataset.to_table(filter=ds.field("batch_id") == metadata["batch_id"])
    assert set(rows["topic"].to_pylist()) == {TOPIC} and rows.num_rows == metadata["records"]


def test_aws_profile_archives_to_s3_and_keeps_secrets_out(fresh_stream, db, aws, caplog):
    with caplog.at_level("DEBUG"):
        _, metadata, logs = _ingest_one_batch(aws)
    _assert_archived_exactly(db, object_store(aws), metadata)
    _assert_no_secret(
        [repr(metadata), logs, caplog.text, repr(aws), repr(aws.kafka_client_config())],
        [SASL_PASSWORD],
    )


def test_azure_profile_archives_to_blob_storage_and_keeps_secrets_out(
    fresh_stream, db, azure, caplog
):
    with caplog.at_level("DEBUG"):
        _, metadata, logs = _ingest_one_batch(azure)
    _assert_archived_exactly(db, object_store(azure), metadata)
    _assert_no_secret(
        [repr(metadata), logs, caplog.text, repr(azure)],
        [SASL_PASSWORD, AZURITE_KEY, azure.azure_storage_connection_string.get_secret_value()],
    )


def test_an_unreachable_store_fails_no_batch_and_the_archive_catches_up(
    fresh_stream, db, aws, monkeypatch
):
    monkeypatch.setenv("PULSEMART_S3_BUCKET", "no-such-bucket")
    broken = load_settings()
    result, metadata, logs = _ingest_one_batch(broken, count=120)
    assert result.success and metadata["records"] == 120  # stored, offset moved
    assert metadata["archive_status"] == "failed" and "NoSuchBucket" in metadata["archive_error"]
    assert metadata["archive_owed"] == 1
    assert "stored but not archived" in logs
    row = db.execute(
        "select status, attempts, last_error from ingest.archive_log where batch_id = %s",
        (metadata["batch_id"],),
    ).fetchone()
    db.commit()
    assert row[0] == "failed" and row[1] == 1 and "NoSuchBucket" in row[2]
    # The store is back (here: the right bucket); the next run, or the command, copies it.
    outcomes = retry_owed(db, object_store(aws))
    assert [(o.batch_id, o.status) for o in outcomes] == [(metadata["batch_id"], "archived")]
    assert owed_count(db) == 0
    _assert_archived_exactly(
        db,
        object_store(aws),
        {**metadata, "archive_status": "archived", "archive_uri": outcomes[0].uri},
    )


@pytest.fixture
def mlflow_home(tmp_path):
    """MLflow pointed at a throw-away home; its process-wide state is put back afterwards."""
    with mlflow_state_restored():
        yield tmp_path


def _log_tiny_model(settings, home, experiment: str):
    """A two-feature propensity pipeline logged through ml.tracking, as the ML assets do."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from ml import tracking

    experiment_id = tracking.configure(
        home, None, experiment=experiment, **mlflow_options(settings)
    )
    features = pd.DataFrame({"recency": [1.0, 2.0, 30.0, 40.0], "orders": [5.0, 4.0, 0.0, 1.0]})
    model = make_pipeline(LogisticRegression()).fit(features, [1, 1, 0, 0])
    return tracking.log_propensity(
        model,
        {"auc": 1.0},
        {"c": 1.0},
        {"start": "a", "end": "b"},
        input_example=features.head(2),
        experiment_id=experiment_id,
    )


def test_mlflow_artifacts_land_in_each_profiles_store(aws, azure, mlflow_home):
    """The same call for both profiles; only the settings differ. (Both fixtures have run, so
    the environment holds the AWS test credentials and Azurite's connection string, which MLflow
    reads itself.)"""
    import boto3
    from azure.storage.blob import BlobServiceClient

    logged = _log_tiny_model(aws, mlflow_home, "pulsemart-aws")
    s3 = boto3.client("s3", endpoint_url=aws.s3_endpoint_url)
    keys = [
        item["Key"]
        for item in s3.list_objects_v2(Bucket=aws.s3_bucket, Prefix="mlflow/").get("Contents", [])
    ]
    assert any(key.endswith("/MLmodel") for key in keys), keys
    assert logged.model_uri

    _log_tiny_model(azure, mlflow_home, "pulsemart-azure")
    container = BlobServiceClient.from_connection_string(
        azure.azure_storage_connection_string.get_secret_value()
    ).get_container_client(azure.adls_container)
    names = [blob.name for blob in container.list_blobs(name_starts_with="mlflow/")]
    assert any(name.endswith("/MLmodel") for name in names), names
