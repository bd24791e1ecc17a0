"""Running dbt on the datamart from the command line: parse, build, docs.

Dagster runs the same project through dagster-dbt (orchestration/defs/datamart); this module is
for operators and for `make install`, which prepares the manifest Dagster loads.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from pulsemart.config import Settings
from pulsemart.datamart.project import DBT_PROJECT_DIR, dbt_env


class DbtError(RuntimeError):
    """dbt exited with an error; its output has already been shown."""


def dbt_executable() -> str:
    # The dbt beside this interpreter (the project's venv), whatever PATH says.
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_command(args: list[str]) -> list[str]:
    return [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR)]


def run_dbt(
    settings: Settings, args: list[str], capture: bool = False, offline: bool = False
) -> subprocess.CompletedProcess:
    """Run one dbt command against pulsemart's database; raise DbtError if it fails."""
    result = subprocess.run(
        dbt_command(args),
        env=dbt_env(settings, offline=offline),
        cwd=DBT_PROJECT_DIR,
        capture_output=capture,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout or "")[-4000:] if capture else ""
        raise DbtError(
            f"`dbt {' '.join(args)}` failed with exit code {result.returncode}\n{tail}".strip()
        )
    return result
