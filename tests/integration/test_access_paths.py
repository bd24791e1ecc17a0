"""Every read route's statement reaches the rows it needs through an index, checked in the
plan rather than by timing: with sequential scans disabled, a table the statement reads by key
but has no index for still shows a sequential scan.

The serving tables are small here, so the planner would often scan them whole anyway; turning
`enable_seqscan` off asks whether an index *can* serve each access path, which is what holds
at a real catalog's size. The one-row `serving.progress` is read whole by design.
"""

from __future__ import annotations

import json

import pytest
from psycopg import ClientCursor, sql

from ml.names import PROPENSITY, RECOMMENDER
from pulsemart.serving.personal import PERSONAL, SIMILAR, personal_params
from pulsemart.serving.queries import CUSTOMER_PROPENSITY, SEARCH, SearchFilters, search_params

pytestmark = pytest.mark.integration

VERSION = "v-paths"
PRODUCTS = 400
READ_WHOLE = {"progress"}  # one row


@pytest.fixture
def shop(db):
    """A catalog, a trending hour, a customer with a session, a deployed recommender with
    scores and neighbours, a propensity score: in a transaction rolled back at the end."""
    for table in (
        "trending",
        "product_state",
        "customer_profile",
        "recent_touches",
        "recommendations",
        "item_neighbours",
        "propensity_scores",
    ):
        db.execute(f"delete from serving.{table}")  # noqa: S608 - constant names
    db.execute(
        "insert into serving.product_state (product_id, description, category, unit_price, "
        "available) select 'P' || lpad(i::text, 4, '0'), 'item ' || i, "
        "(array['kitchen', 'garden', 'home_decor'])[1 + i %% 3], 1 + i %% 50, i %% 7 <> 0 "
        "from generate_series(1, %s) i",
        (PRODUCTS,),
    )
    db.execute(
        'insert into serving.trending (product_id, "window", views, carts, purchases, score, '
        "as_of) select product_id, '1h', 1, 0, 0, 1 + length(product_id), now() "
        "from serving.product_state where right(product_id, 1) in ('1', '5')"
    )
    db.execute(
        "insert into serving.customer_profile (customer_id, category_affinity, price_sum, "
        "price_n) values ('C1', %s, 90, 3)",
        (json.dumps({"kitchen": 5, "garden": 1}),),
    )
    touches = json.dumps(
        [
            {"product_id": "P0003", "kind": "view", "event_time": "2026-12-01T10:00:00+00:00"},
            {"product_id": "P0010", "kind": "cart", "event_time": "2026-12-01T09:59:00+00:00"},
        ]
    )
    db.execute(
        "insert into serving.recent_touches (scope, owner_id, items, last_event_time) values "
        "('session', 'S1', %s, '2026-12-01T10:00:00Z'), "
        "('customer', 'C1', %s, '2026-12-01T10:00:00Z')",
        (touches, touches),
    )
    db.execute(
        "insert into serving.recommendations (model_name, model_version, customer_key, "
        "product_id, rank, score) select %s, %s, governance.keyed_hash('C' || c), "
        "'P' || lpad((1 + (c * 7 + r) %% %s)::text, 4, '0'), r, 1.0 / r "
        "from generate_series(1, 300) c, generate_series(1, 20) r",
        (RECOMMENDER, VERSION, PRODUCTS),
    )
    db.execute(
        "insert into serving.item_neighbours (model_name, model_version, product_id, rank, "
        "neighbour_id, score) select %s, %s, p.product_id, r, "
        "'P' || lpad((1 + (substr(p.product_id, 2)::int + r) %% %s)::text, 4, '0'), 1.0 / r "
        "from serving.product_state p, generate_series(1, 10) r",
        (RECOMMENDER, VERSION, PRODUCTS),
    )
    db.execute(
        "insert into serving.propensity_scores (model_name, model_version, customer_key, score) "
        "values (%s, %s, governance.keyed_hash('C1'), 0.4)",
        (PROPENSITY, VERSION),
    )
    for model in (RECOMMENDER, PROPENSITY):
        db.execute(
            "insert into serving.model_deployments (model_name, model_version, deployed_by) "
            "values (%s, %s, 'test') on conflict (model_name) do update "
            "set model_version = excluded.model_version",
            (model, VERSION),
        )
    db.execute("analyze serving.product_state, serving.recommendations, serving.item_neighbours")
    db.execute("set local enable_seqscan = off")
    yield db
    db.rollback()


def executed_scans(plan: dict) -> list[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every scan node the statement ran."""
    found = []
    # A bitmap scan names its index on the Bitmap Index Scan below the heap scan.
    if (plan.get("Relation Name") or plan.get("Index Name")) and plan.get("Actual Loops", 0) > 0:
        found.append((plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name")))
    for child in plan.get("Plans", ()):
        found += executed_scans(child)
    return found


def scans_of(
    db, statement: str | sql.Composable, params: dict
) -> list[tuple[str, str | None, str | None]]:
    # Values inlined, as a custom plan sees them: the plan each request's parameters get.
    return executed_scans(plan_of(db, statement, params))


def plan_of(db, statement: str | sql.Composable, params: dict) -> dict:
    """The executed plan's root node (EXPLAIN ANALYZE)."""
    body = sql.SQL(statement) if isinstance(statement, str) else statement
    cur = ClientCursor(db)
    cur.execute(sql.SQL("explain (analyze, costs off, format json) ") + body, params)
    (plan,) = cur.fetchone()
    return (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]


def assert_indexed(scans, *expected_indexes: str) -> None:
    whole = [(kind, table) for kind, table, _ in scans if kind == "Seq Scan"]
    assert not [s for s in whole if s[1] not in READ_WHOLE], scans
    used = {index for _, _, index in scans}
    assert set(expected_indexes) <= used, scans


@pytest.mark.parametrize(
    "customer_id, session_id", [("C1", "S1"), ("C1", None), (None, "S1")], ids=str
)
def test_recommendations_read_by_key(shop, customer_id, session_id):
    scans = scans_of(shop, PERSONAL, personal_params(customer_id, session_id))
    assert_indexed(
        scans,
        "recent_touches_pkey",
        "item_neighbours_pkey",  # one probe per touched product, not the version's every row
        "trending_pkey",
        "product_state_pkey",
        *(["recommendations_pkey", "customer_profile_pkey"] if customer_id else []),
    )
    neighbour_rows = [s for s in scans if s[1] == "item_neighbours"]
    assert neighbour_rows, scans


def test_the_neighbours_read_is_in_proportion_to_the_touches(shop):
    """Two touched products: their twenty neighbours are read, not the version's 4,000."""

    def rows_read(node: dict) -> int:
        here = (
            node.get("Actual Rows", 0) * node.get("Actual Loops", 0)
            if node.get("Relation Name") == "item_neighbours"
            else 0
        )
        return here + sum(rows_read(child) for child in node.get("Plans", ()))

    assert rows_read(plan_of(shop, PERSONAL, personal_params("C1", "S1"))) <= 20


def test_propensity_reads_by_key(shop):
    scans = scans_of(shop, CUSTOMER_PROPENSITY, {"model": PROPENSITY, "customer_id": "C1"})
    assert_indexed(scans, "propensity_scores_pkey", "customer_profile_pkey")


def test_similar_reads_by_key(shop):
    scans = scans_of(shop, SIMILAR, {"model": RECOMMENDER, "product_id": "P0003", "k": 10})
    assert_indexed(scans, "item_neighbours_pkey", "product_state_pkey")


@pytest.mark.parametrize("sort", ["price", "-price", "popularity"])
def test_a_category_search_reads_its_category(shop, sort):
    params = search_params(SearchFilters(category="Kitchen", available=True, sort=sort))
    assert_indexed(scans_of(shop, SEARCH[sort], params), "product_state_category")


def test_a_price_range_search_reads_its_range(shop):
    params = search_params(SearchFilters(price_min=10.0, price_max=12.0, sort="price"))
    assert_indexed(scans_of(shop, SEARCH["price"], params), "product_state_price")
