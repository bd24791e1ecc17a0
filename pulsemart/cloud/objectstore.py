"""Object storage by profile: a local folder, Amazon S3, or ADLS Gen2 / Blob Storage.

Every store holds objects under a root (a folder, `s3://bucket/<prefix>`, or
`container/<prefix>` of a storage account) and offers the same four calls, so the code that
archives batches never asks which cloud it runs in; `object_store(settings)` picks the store
from PULSEMART_PROFILE and its settings.

ADLS Gen2 is reached through its Blob endpoint (`<account>.blob.core.windows.net`): on an
account with a hierarchical namespace, blob writes create the folders of their path, so the
archive reads as `abfss://<container>@<account>.dfs.core.windows.net/archive/...` to Spark,
Synapse or Databricks. The Blob API is also what Azurite, the storage emulator the tests run,
implements (it has no DFS endpoint).

The cloud SDKs are imported when a store is made, not when this module is: the CLI and
Dagster's code-location load stay fast.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

ARCHIVE_PREFIX = "archive"
MLFLOW_PREFIX = "mlflow"
BLOB_SUFFIX = "blob.core.windows.net"
# Fail fast when the store is unreachable: archiving happens after an ingest batch committed,
# and a hung upload would hold the run (and its pool slot) for nothing.
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
RETRIES = 2


class StoreSettings(Protocol):
    """What the stores read of pulsemart.config.Settings (named here, so that the settings
    module may use this package without this package importing it back). Read-only, as
    Settings is frozen."""

    @property
    def profile(self) -> str: ...
    @property
    def home(self) -> Path: ...
    @property
    def archive_dir(self) -> Path | None: ...
    @property
    def s3_bucket(self) -> str | None: ...
    @property
    def s3_endpoint_url(self) -> str | None: ...
    @property
    def adls_account(self) -> str | None: ...
    @property
    def adls_container(self) -> str | None: ...
    @property
    def azure_storage_connection_string(self) -> SecretStr | None: ...
    @property
    def azure_storage_access_key(self) -> SecretStr | None: ...


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> str:
        """Write (or overwrite) the object `key`; return its URI."""

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys under `prefix`, relative to the store's root, sorted."""

    def uri(self, key: str) -> str: ...


def _join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part and part.strip("/"))


class LocalStore:
    """A folder. Writes go to a temporary file first, so a reader never sees half an object."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"object key {key!r} leaves the store's folder")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.uri(key)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = (
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return sorted(key for key in keys if key.startswith(prefix))

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()


class S3Store:
    """A prefix of an S3 bucket (or of an S3-compatible endpoint: moto, MinIO).

    Credentials and region come from boto3's standard chain: the ECS task role, AWS_PROFILE,
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_REGION.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client=None):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    retries={"max_attempts": RETRIES + 1, "mode": "standard"},
                ),
            )
        self.client = client

    def _key(self, key: str) -> str:
        return _join(self.prefix, key)

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        root = self._key("") + "/" if self.prefix else ""
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=root + prefix
        ):
            keys += [item["Key"][len(root) :] for item in page.get("Contents", [])]
        return sorted(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


class BlobStore:
    """A prefix of a container in an Azure storage account (ADLS Gen2 through its Blob endpoint).

    Credentials, first found: AZURE_STORAGE_CONNECTION_STRING (Azurite's works too), the
    account key (AZURE_STORAGE_ACCESS_KEY), else azure-identity's DefaultAzureCredential (AKS
    workload identity or a managed identity: AZURE_CLIENT_ID and friends).
    """

    def __init__(
        self,
        container: str,
        prefix: str = "",
        account: str | None = None,
        connection_string: str | None = None,
        access_key: str | None = None,
        client=None,
    ):
        self.container, self.prefix = container, prefix.strip("/")
        if client is None:
            from azure.storage.blob import BlobServiceClient

            options: dict[str, Any] = {
                "connection_timeout": CONNECT_TIMEOUT_S,
                "read_timeout": READ_TIMEOUT_S,
                "retry_total": RETRIES,
            }
            if connection_string:
                client = BlobServiceClient.from_connection_string(connection_string, **options)
            else:
                if not account:
                    raise ValueError("BlobStore needs an account or a connection string")
                credential: Any = access_key
                if credential is None:
                    from azure.identity import DefaultAzureCredential

                    credential = DefaultAzureCredential()
                client = BlobServiceClient(
                    f"https://{account}.{BLOB_SUFFIX}", credential=credential, **options
                )
        self.service = client
        self.client = client.get_container_client(container)
        self.account = account or client.account_name

    def _key(self, key: str) -> str:
        return _join(self.prefix, key)

    def put(self, key: str, data: bytes) -> str:
        self.client.upload_blob(self._key(key), data, overwrite=True)
        return self.uri(key)

    def get(self, key: str) -> bytes:
        return self.client.download_blob(self._key(key)).readall()

    def exists(self, key: str) -> bool:
        return self.client.get_blob_client(self._key(key)).exists()

    def list(self, prefix: str = "") -> list[str]:
        root = self._key("") + "/" if self.prefix else ""
        return sorted(
            blob.name[len(root) :]
            for blob in self.client.list_blobs(name_starts_with=root + prefix)
        )

    def uri(self, key: str) -> str:
        # The client's own URL: the real account's endpoint, or Azurite's on loopback.
        return f"{self.client.url.rstrip('/')}/{self._key(key)}"


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def object_store(settings: StoreSettings, prefix: str = ARCHIVE_PREFIX) -> ObjectStore:
    """The store the profile names, rooted at `prefix` (locally: PULSEMART_ARCHIVE_DIR)."""
    # load_settings refuses a cloud profile without its bucket or container; checked again here
    # for settings built another way.
    if settings.profile == "aws":
        if not settings.s3_bucket:
            raise ValueError("the aws profile needs an S3 bucket (PULSEMART_S3_BUCKET)")
        return S3Store(settings.s3_bucket, prefix, endpoint_url=settings.s3_endpoint_url)
    if settings.profile == "azure":
        if not settings.adls_container:
            raise ValueError("the azure profile needs a container (PULSEMART_ADLS_CONTAINER)")
        return BlobStore(
            settings.adls_container,
            prefix,
            account=settings.adls_account,
            connection_string=_reveal(settings.azure_storage_connection_string),
            access_key=_reveal(settings.azure_storage_access_key),
        )
    root = (
        settings.archive_dir or settings.home / ARCHIVE_PREFIX
        if prefix == ARCHIVE_PREFIX
        else settings.home / prefix
    )
    return LocalStore(root)


def mlflow_artifact_location(settings: StoreSettings) -> str | None:
    """Where MLflow keeps the experiment's artifacts in the cloud profiles (None: locally).

    S3: `s3://<bucket>/mlflow` (MLflow uses boto3; a custom endpoint goes through
    MLFLOW_S3_ENDPOINT_URL, which `ml.tracking.configure` sets from PULSEMART_S3_ENDPOINT_URL).
    Azure: `wasbs://<container>@<account>.blob.core.windows.net/mlflow` (MLflow reads
    AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCESS_KEY itself, else
    DefaultAzureCredential).
    """
    if settings.profile == "aws":
        return f"s3://{settings.s3_bucket}/{MLFLOW_PREFIX}"
    if settings.profile == "azure":
        return (
            f"wasbs://{settings.adls_container}@{settings.adls_account}.{BLOB_SUFFIX}/"
            f"{MLFLOW_PREFIX}"
        )
    return None


def mlflow_options(settings: StoreSettings) -> dict:
    """Keywords for `ml.tracking.configure` beyond (home, tracking URI): the artifact root of
    the profile and, for S3-compatible endpoints, the endpoint."""
    return {
        "artifact_location": mlflow_artifact_location(settings),
        "s3_endpoint_url": settings.s3_endpoint_url if settings.profile == "aws" else None,
    }
