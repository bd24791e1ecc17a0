"""No SQL text is built from runtime values: f-strings that hold SQL may splice in only
module-level constants (UPPER_CASE names); values go through psycopg's parameters and
identifiers through psycopg.sql.Identifier. A static check over the whole code base."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["pulsemart", "orchestration", "sensors", "ml", "benchmarks"]
SQL = re.compile(r"\bselect\b.*\bfrom\b|\binsert\s+into\b|\bupdate\s+\S+\s+set\b|\bdelete\s+from\b|"
                 r"\bcopy\s*\(|\b(create|drop|alter)\s+(table|schema|index|view)\b|\btruncate\b",
                 re.IGNORECASE | re.DOTALL)
# Reviewed exceptions: (file, variable spliced in) → why it is not user input.
ALLOWED = {
    ("benchmarks/pulsemart_bench/datamart.py", "query"): "the benchmark's own constant COPY queries",
}


def _constant(value: ast.expr) -> bool:
    """An UPPER_CASE module constant, or a call on literals only (SQL built at import time)."""
    if isinstance(value, ast.Name):
        return value.id.isupper()
    if isinstance(value, ast.Call):
        return all(isinstance(arg, ast.Constant) for arg in value.args) and not value.keywords
    return False


def spliced_names(path: Path) -> list[tuple[int, str]]:
    """(line, expression) of every non-constant value spliced into an f-string holding SQL."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.JoinedStr):
            continue
        text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
        if not SQL.search(text):
            continue
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                expr = ast.unparse(part.value)
                if not _constant(part.value):
                    found.append((node.lineno, expr))
    return found


def test_sql_f_strings_splice_only_constants():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for line, expr in spliced_names(path):
                if (relative, expr) not in ALLOWED:
                    offenders.append(f"{relative}:{line}: {{{expr}}}")
    assert offenders == [], "SQL built from runtime values:\n" + "\n".join(offenders)


def test_the_check_catches_a_spliced_value(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(conn, table):\n    conn.execute(f"select * from {table}")\n')
    assert spliced_names(bad) == [(2, "table")]
