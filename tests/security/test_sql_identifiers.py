"""No SQL text is built from runtime values: values go through psycopg's parameters and
identifiers through psycopg.sql.Identifier. ruff's S608 (flake8-bandit) finds SQL assembled
from strings; the few places that splice in a module constant say so with a per-line noqa."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"
PACKAGES = ["pulsemart", "orchestration", "sensors", "ml"]


def sql_splices(*paths: str | Path) -> list[tuple[str, int]]:
    """(file name, line) of every S608 finding under the project's ruff configuration."""
    result = subprocess.run(
        [
            str(RUFF),
            "check",
            "--select",
            "S608",
            "--output-format",
            "json",
            "--no-cache",
            *map(str, paths),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: findings; anything else: ruff failed
    return [(Path(f["filename"]).name, f["location"]["row"]) for f in json.loads(result.stdout)]


def test_no_sql_is_spliced_from_runtime_values():
    assert sql_splices(*PACKAGES) == []


def test_the_check_catches_a_spliced_value(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(conn, table):\n    conn.execute(f"select * from {table}")\n')
    assert sql_splices(bad) == [("bad.py", 2)]
