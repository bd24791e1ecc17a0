"""Planner statistics follow bulk loads: a replay into tables a reset emptied is planned on the
rows it wrote, not on the zero rows the tables held when they were last analyzed.

Autovacuum is off for these tables during the test, so nothing but the product's own writers
can refresh the statistics: the outcome does not depend on when autovacuum wakes up.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from psycopg import sql

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.cli.main import cli
from pulsemart.store.statistics import GROWTH_SHARE, MIN_ROWS, stale
from pulsemart.stream.rewind import reset_to_earliest
from tests.data import RETAIL_SAMPLE as SAMPLE

pytestmark = pytest.mark.integration
TOPICS = ["shop.catalog", "shop.events"]
TABLES = [("raw", "events"), ("quality", "events_clean"), ("quality", "order_lines_clean")]


@pytest.fixture
def no_autovacuum(db):
    for table in TABLES:
        db.execute(
            sql.SQL("alter table {} set (autovacuum_enabled = false)").format(
                sql.Identifier(*table)
            )
        )
    db.commit()
    yield
    for table in TABLES:
        db.execute(
            sql.SQL("alter table {} reset (autovacuum_enabled)").format(sql.Identifier(*table))
        )
    db.commit()


def believed_rows(db, schema: str, table: str) -> float:
    (rows,) = db.execute(
        "select reltuples from pg_class where oid = %s::regclass", (f"{schema}.{table}",)
    ).fetchone()
    return float(rows)


def planned_rows(db, query: sql.Composable) -> float:
    (plan,) = db.execute(sql.SQL("explain (format json) ") + query).fetchone()
    return float((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]["Plan Rows"])


def test_a_replay_after_a_reset_is_planned_on_the_rows_it_wrote(fresh_stream, db, no_autovacuum):
    # A slice of the real sample: its invoices carry about 20 lines each.
    assert CliRunner().invoke(cli, ["replay", str(SAMPLE), "--limit", "400"]).exit_code == 0
    catch_up(fresh_stream, defs, TOPICS)
    # A Kappa reset deletes the rows; an ANALYZE then (autovacuum's, after the deletes) leaves
    # the planner believing the tables hold nothing, at any size.
    for topic in TOPICS:
        reset_to_earliest(db, fresh_stream, topic)
    for table in TABLES:
        db.execute(sql.SQL("analyze {}").format(sql.Identifier(*table)))
    db.commit()
    assert [believed_rows(db, *table) for table in TABLES] == [0.0, 0.0, 0.0]

    catch_up(fresh_stream, defs, TOPICS)  # the replay: land, decide

    for schema, table in TABLES:
        (actual,) = db.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
        ).fetchone()
        assert actual >= MIN_ROWS
        assert believed_rows(db, schema, table) >= (1 - GROWTH_SHARE) * actual, (schema, table)
        # What the planner uses: a scan estimated at the table's size, not at one row (which
        # turns the fold's and the datamart's joins into nested loops over every line).
        scan = sql.SQL("select * from {}").format(sql.Identifier(schema, table))
        assert planned_rows(db, scan) >= (1 - GROWTH_SHARE) * actual, (schema, table)


@pytest.mark.parametrize(
    ("believed", "modified", "written", "expected"),
    [
        (-1, 0, MIN_ROWS, True),  # never analyzed, loaded
        (0, 0, MIN_ROWS, True),  # analyzed while empty, then loaded
        (0, 0, MIN_ROWS - 1, False),  # too few rows to matter
        (100_000, 10_000, 5_000, False),  # grown by 15%: the density still holds
        (100_000, 15_000, 5_001, True),  # grown past the share
    ],
)
def test_statistics_are_stale_once_the_table_has_grown_by_a_share(
    believed, modified, written, expected
):
    assert stale(believed, modified, written) is expected
