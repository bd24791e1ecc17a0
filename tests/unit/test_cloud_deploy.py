"""The deploy/ instance configs validate against Dagster's config schema, class by class, and
the Dockerfile names only files that exist."""

import re
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._serdes.config_class import ConfigurableClassData

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    "aws": ROOT / "deploy/aws/dagster.yaml",
    "azure": ROOT / "deploy/azure/dagster.yaml",
    "local": ROOT / "dagster.yaml",
}
EXPECTED_LAUNCHER = {
    "aws": "dagster_aws.ecs.launcher.EcsRunLauncher",
    "azure": "dagster_k8s.launcher.K8sRunLauncher",
}
# What the tasks or pods put in the environment; only the names matter to validation.
ENV = [
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_USERNAME",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
    "PULSEMART_S3_BUCKET",
    "PULSEMART_DATABASE_URL_SECRET_ARN",
    "PULSEMART_KAFKA_SASL_PASSWORD_SECRET_ARN",
    "DAGSTER_PG_PASSWORD_SECRET_ARN",
    "PULSEMART_IMAGE",
    "PULSEMART_ADLS_ACCOUNT",
    "PULSEMART_ADLS_CONTAINER",
]


def _class_data(ref: InstanceRef) -> dict[str, ConfigurableClassData]:
    return {
        name: getattr(ref, f"{name}_data")
        for name in (
            "storage",
            "run_launcher",
            "run_coordinator",
            "compute_logs",
            "local_artifact_storage",
            "scheduler",
        )
        if getattr(ref, f"{name}_data", None) is not None
    }


@pytest.mark.parametrize("name", CONFIGS)
def test_instance_config_validates_and_every_class_accepts_its_config(name, tmp_path, monkeypatch):
    for variable in ENV:
        monkeypatch.setenv(variable, f"value-of-{variable.lower()}")
    shutil.copyfile(CONFIGS[name], tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # the instance schema (raises if invalid)
    ref = InstanceRef.from_dir(str(tmp_path))
    classes = _class_data(ref)
    for part, data in classes.items():
        module = __import__(data.module_name, fromlist=[data.class_name])
        cls = getattr(module, data.class_name)
        # Each class's own schema, env references resolved: what the daemon does at start-up.
        result = process_config(cls.config_type(), data.config_dict)
        assert result.success, (part, [error.message for error in result.errors])
    if name in EXPECTED_LAUNCHER:
        launcher = classes["run_launcher"]
        module = __import__(launcher.module_name, fromlist=[launcher.class_name])
        cls = getattr(module, launcher.class_name)
        assert f"{cls.__module__}.{cls.__qualname__}" == EXPECTED_LAUNCHER[name]
        assert classes["storage"].class_name == "DagsterPostgresStorage"
        assert "postgres" in config["storage"]


@pytest.mark.parametrize(
    ("name", "part", "broken"),
    [
        ("aws", "run_launcher", {"not_an_option": 1}),
        ("azure", "run_launcher", {"job_namespace": ["not", "a", "string"]}),
    ],
)
def test_the_validation_catches_a_broken_launcher_config(name, part, broken, tmp_path, monkeypatch):
    for variable in ENV:
        monkeypatch.setenv(variable, "x")
    config = yaml.safe_load(CONFIGS[name].read_text())
    config[part]["config"].update(broken)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    data = _class_data(InstanceRef.from_dir(str(tmp_path)))[part]
    cls = getattr(__import__(data.module_name, fromlist=[data.class_name]), data.class_name)
    assert not process_config(cls.config_type(), data.config_dict).success


def test_the_deployment_workspace_validates(monkeypatch):
    from dagster._core.workspace.config_schema import process_workspace_config

    monkeypatch.setenv("PULSEMART_STREAMING_HOST", "pulsemart-streaming")
    monkeypatch.setenv("PULSEMART_ANALYTICS_HOST", "pulsemart-analytics")
    result = process_workspace_config(yaml.safe_load((ROOT / "deploy/workspace.yaml").read_text()))
    assert result.success, [error.message for error in result.errors]
    servers = {
        entry["grpc_server"]["location_name"]: entry["grpc_server"]
        for entry in result.value["load_from"]
    }
    assert servers["streaming"]["host"] == "pulsemart-streaming"
    assert servers["analytics"]["host"] == "pulsemart-analytics"
    assert servers["streaming"]["port"] != servers["analytics"]["port"]
    # The same two locations as the local workspace.yaml.
    local = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert sorted(entry["python_module"]["location_name"] for entry in local) == sorted(servers)


def test_the_cloud_configs_keep_the_ingest_pool_of_the_local_one():
    def limits(path):
        return yaml.safe_load(path.read_text())["run_coordinator"]["config"][
            "tag_concurrency_limits"
        ]

    assert limits(CONFIGS["aws"]) == limits(CONFIGS["local"]) == limits(CONFIGS["azure"])


def test_no_secret_is_written_in_the_deploy_configs():
    for path in [*CONFIGS.values(), *(ROOT / "deploy").rglob("*")]:
        if path.is_file():
            text = path.read_text()
            # A password, secret or key given as a literal, rather than {env: ...}, null or a
            # list of Secret names.
            literal = re.search(
                r"(?im)^[ \t-]*\w*(password|secret|access_key|account_key)\w*"
                r"[ \t]*:[ \t]*(?!\{env|null|\[|$)\S",
                text,
            )
            assert not literal, (path, literal and literal.group(0))


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        tuple(line.split(None, 1))
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_copies_only_what_exists_and_runs_the_code_location():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    copies = [args.split() for op, args in instructions if op == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        ignored = {
            line.strip().rstrip("/")
            for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"
    run = " ".join(args for op, args in instructions if op == "RUN")
    assert "pip install" in run and "-e ." in run  # editable: the dbt project stays beside it
    cmd = next(args for op, args in instructions if op == "CMD")
    assert "orchestration.streaming" in cmd  # the analytics service overrides the command
    entrypoint = next(args for op, args in instructions if op == "ENTRYPOINT")
    assert "deploy/entrypoint.sh" in entrypoint
    assert "deploy/$profile/dagster.yaml" in (ROOT / "deploy/entrypoint.sh").read_text()
