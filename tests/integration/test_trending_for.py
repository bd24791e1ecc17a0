"""The trending fallback ranks exactly as a scan of the whole catalog would, and reads the
catalog beyond the hour's active products only when they are fewer than asked for."""

from __future__ import annotations

import json
import random

import pytest

from pulsemart.serving.queries import TRENDING_FOR

pytestmark = pytest.mark.integration

# The definition: every priced product not out of stock, by its hour's trending score times the
# customer's factor, then the factor, then the id.
EVERY_PRODUCT = """
with profile as (
    select category_affinity as affinity, avg_price,
           (select sum(value::float8) from jsonb_each_text(category_affinity)) as total
    from serving.customer_profile where customer_id = %(customer_id)s
), factored as (
    select p.product_id, coalesce(t.score, 0) as trending_score,
           case when %(personal)s then
               (1 + 2 * coalesce((pr.affinity->>p.category)::float8 / nullif(pr.total, 0), 0))
               * coalesce(1 / (1 + abs(ln(p.unit_price / nullif(pr.avg_price, 0)))), 1)
           else 1 end as factor
    from serving.product_state p
    left join serving.trending t on t.product_id = p.product_id and t."window" = '1h'
    left join profile pr on true
    where p.unit_price > 0 and coalesce(p.available, true)
)
select product_id, trending_score * factor as score, trending_score
from factored order by score desc, factor desc, product_id limit %(k)s
"""
CATEGORIES = ["home_decor", "kitchen", "garden", None]


@pytest.fixture
def catalog(db):
    """300 products, 40 of them active in the hour (some unpriced or sold out), one customer
    with a taste; all in a transaction rolled back at the end."""
    rng = random.Random(7)
    db.execute("delete from serving.trending")
    db.execute("delete from serving.product_state")
    db.execute("delete from serving.customer_profile")
    for i in range(300):
        db.execute(
            "insert into serving.product_state (product_id, category, unit_price, available) "
            "values (%s, %s, %s, %s)",
            (
                f"P{i:03d}",
                rng.choice(CATEGORIES),
                rng.choice([None, 0.0, *[round(rng.uniform(1, 80), 2)] * 8]),
                rng.choice([None, False, True, True, True]),
            ),
        )
    for i in rng.sample(range(300), 40):
        db.execute(
            'insert into serving.trending (product_id, "window", views, carts, purchases, '
            "score, as_of) values (%s, '1h', 1, 0, 0, %s, now())",
            (f"P{i:03d}", rng.choice([0, 1, 2, 3, 5, 8])),
        )
    db.execute(
        "insert into serving.customer_profile (customer_id, category_affinity, price_sum, price_n) "
        "values ('C1', %s, 90, 3)",
        (json.dumps({"kitchen": 5, "garden": 1}),),
    )
    yield db
    db.rollback()


@pytest.mark.parametrize("k", [1, 5, 20, 50, 400])
@pytest.mark.parametrize("customer_id", ["C1", None], ids=["known", "anonymous"])
def test_the_ranking_is_the_whole_catalogs(catalog, k, customer_id):
    params = {"customer_id": customer_id, "personal": customer_id is not None, "k": k}
    expected = catalog.execute(EVERY_PRODUCT, params).fetchall()
    assert catalog.execute(TRENDING_FOR, params).fetchall() == expected
    assert len(expected) == min(k, _eligible(catalog))


def _eligible(db) -> int:
    (n,) = db.execute(
        "select count(*) from serving.product_state "
        "where unit_price > 0 and coalesce(available, true)"
    ).fetchone()
    return n


def _catalog_scans(plan: dict) -> list[int]:
    """The loops of every scan of serving.product_state outside the hour's products."""
    if plan.get("Subplan Name") == "CTE hot":
        return []
    found = [plan["Actual Loops"]] if plan.get("Relation Name") == "product_state" else []
    for child in plan.get("Plans", ()):
        found += _catalog_scans(child)
    return found


@pytest.mark.parametrize("k, read", [(5, False), (200, True)])
def test_the_catalog_is_read_only_when_the_hour_has_fewer_than_k(catalog, k, read):
    params = {"customer_id": "C1", "personal": True, "k": k}
    (plan,) = catalog.execute(
        "explain (analyze, costs off, format json) " + TRENDING_FOR, params
    ).fetchone()
    scans = _catalog_scans((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    assert scans, "the plan has no scan of the catalog beyond the hour's products"
    assert any(scans) is read
