"""Planner statistics that follow the data: ANALYZE a table once it has grown by a large share.

The planner scales a table's row estimate by its current size, using the density (rows per
page) of its last ANALYZE. That holds while the table grows at its usual pace, and fails in
two cases every bulk load meets: a table emptied and analyzed while empty (a Kappa reset, a
test's reset) has a density of zero, so any size is planned as one row; and a table loaded
far past what its statistics describe carries column statistics that no longer fit. Either
way a join becomes a nested loop over hundreds of thousands of rows, for minutes.

Autovacuum repairs this within a minute or so, which is too late for the fold and the dbt
build that run right after the load. So the writers call `analyze_grown` in their own
transaction, with the rows they just wrote (not yet in `pg_stat_user_tables`, which counts
committed work only). ANALYZE samples a bounded number of rows (300 x the statistics target)
and counts the transaction's own uncommitted rows, so the fold later in the same transaction
is planned on them. Growth by a share makes the number of analyses logarithmic in the table's
size: a steady trickle pays almost nothing, a replay a few dozen samples.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

# Analyze when the rows written since the last ANALYZE pass this share of the rows the
# planner believes the table holds, and at least MIN_ROWS (small tables plan well regardless).
GROWTH_SHARE = 0.2
MIN_ROWS = 1_000

_STATE = """
select n.nspname || '.' || c.relname, n.nspname, c.relname, c.reltuples,
       coalesce(s.n_mod_since_analyze, 0)
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_stat_user_tables s on s.relid = c.oid
where c.oid = any(%s::regclass[])
"""


def stale(believed_rows: float, modified: int, written: int) -> bool:
    """Whether a table whose statistics describe `believed_rows` (-1: never analyzed) and that
    has `modified` committed plus `written` uncommitted changes since needs a new ANALYZE."""
    changed = modified + written
    return changed >= MIN_ROWS and changed > GROWTH_SHARE * max(believed_rows, 0.0)


def analyze_grown(conn: psycopg.Connection, written: Mapping[str, int]) -> list[str]:
    """ANALYZE each `schema.table` in `written` (rows this transaction wrote to it) whose
    statistics it has outgrown; return the tables analyzed."""
    candidates = [name for name, rows in written.items() if rows > 0]
    if not candidates:
        return []
    analyzed = []
    for name, schema, table, believed, modified in conn.execute(_STATE, (candidates,)).fetchall():
        if stale(float(believed), int(modified), written.get(name, 0)):
            conn.execute(
                psycopg.sql.SQL("analyze {}").format(psycopg.sql.Identifier(schema, table))
            )
            analyzed.append(name)
    return analyzed
