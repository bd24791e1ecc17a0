"""Session-aware recommendations and similar products, each read in one round trip.

`PERSONAL` gathers everything the blend needs in one statement: the shopper's experiment arm
(the deployed champion outside an experiment; docs/serving.md, "Experiments"), that version's
batch scores for the customer, what the session and the customer touched recently (kept by the
fold in `serving.recent_touches`), that version's neighbours of those products, the trending
list (re-ranked for a known customer, as `queries.TRENDING_FOR` explains, except in the
`popularity` arm), and the serving row of every candidate. `ml.blend.blend` ranks them in
Python, the same function the offline session replay measures.

What an answer depends on, for the response cache: the customer and the session (their
touches and profile), the trending list (and its clock, `trending_as_of`) and the catalog
(which candidates are available, at what price): `answer_tags` names them. Deployments and
experiments change rarely and empty the whole cache (cache.py). The shown products'
rows, whose counters every view moves, are kept apart (fragments.py).

Availability: a model-scored product is dropped only when it is known to be unavailable (a
product the serving tables have not seen yet is kept, as before); a neighbour or trending
product must be known, priced and available. A touched product the catalog does not know yet
stays in the session state and lends its neighbours; it is itself recommended only once known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from ml.blend import Blended, BlendWeights, Touch, blend
from ml.names import POPULARITY, RECOMMENDER
from pulsemart.serving.cache import CATALOG, TRENDING, customer_tag, session_tag
from pulsemart.serving.fragments import ITEM_COLUMNS
from pulsemart.serving.queries import TRENDING_FOR
from pulsemart.store.rows import one_row_async

TRENDING_POOL = 50  # trending candidates the blend may fall back on
# The trending list, re-ranked for a known customer, except in an experiment's `popularity`
# arm: the baseline every model must beat is the same list for everyone.
POPULARITY_TRENDING = TRENDING_FOR.replace("%(k)s", "%(pool)s").replace(
    "%(personal)s",
    "(%(personal)s and (select model_version from shown) is distinct from %(popularity)s)",
)

PERSONAL = f"""
with deployed as (
    select model_version from serving.model_deployments where model_name = %(model)s
), running as (
    select experiment_id from serving.experiments
    where model_name = %(model)s and status = 'running'
), arms as (
    select r.experiment_id, v.variant, v.model_version, e.shadow
    from running r
    join serving.experiments e using (experiment_id)
    join serving.experiment_variants v using (experiment_id)
    where serving.experiment_bucket(r.experiment_id, %(unit)s) >= v.low
      and serving.experiment_bucket(r.experiment_id, %(unit)s) < v.high
), shown as (
    select coalesce((select variant from arms where not shadow), 'champion') as variant,
           coalesce((select model_version from arms where not shadow),
                    (select model_version from deployed)) as model_version
), versions as (
    select model_version, false as shadow from shown where model_version is not null
    union all
    select model_version, true from arms where shadow
), session as (
    select items from serving.recent_touches
    where scope = 'session' and owner_id = %(session_id)s
), history as (
    select items from serving.recent_touches
    where scope = 'customer' and owner_id = %(customer_id)s
), touched as (
    select distinct e->>'product_id' as product_id
    from (select items from session union all select items from history) r,
         jsonb_array_elements(r.items) e
), model as (
    select r.product_id, r.score, r.rank, v.shadow
    from versions v
    join serving.recommendations r
      on r.model_name = %(model)s and r.model_version = v.model_version
    where r.customer_key = governance.keyed_hash(%(customer_id)s)
), neighbours as (
    -- One index probe per touched product. As a join, the planner expects a hundred rows from
    -- jsonb_array_elements and hashes every neighbour of the version: the whole catalog's.
    select n.product_id, n.neighbour_id, n.score, v.shadow
    from versions v, touched t, lateral (
        select n.product_id, n.neighbour_id, n.score from serving.item_neighbours n
        where n.model_name = %(model)s and n.model_version = v.model_version
          and n.product_id = t.product_id
        offset 0
    ) n
), trending as (
    {POPULARITY_TRENDING}
), candidates as (
    select product_id from model union select neighbour_id from neighbours
    union select product_id from trending
)
select
    (select model_version from shown) as model_version,
    (select variant from shown) as variant,
    (select experiment_id from running) as experiment_id,
    (select model_version from arms where shadow) as shadow_version,
    (select max_event_time from serving.progress) as as_of,
    (select trending_as_of from serving.progress) as trending_as_of,
    (select items from session) as session,
    coalesce((select items from history), '[]'::jsonb) as history,
    (select coalesce(json_agg(json_build_array(product_id, score, shadow) order by rank),
                     '[]'::json)
     from model) as model,
    (select coalesce(json_agg(json_build_array(product_id, neighbour_id, score, shadow)
                               order by product_id, score desc), '[]'::json)
     from neighbours) as neighbours,
    (select coalesce(json_agg(json_build_array(product_id, score, trending_score)
                               order by score desc, product_id), '[]'::json)
     from trending) as trending,
    (select coalesce(json_object_agg(p.product_id, json_build_object(
         'product_id', p.product_id, 'description', p.description, 'category', p.category,
         'unit_price', p.unit_price, 'currency', p.currency, 'available', p.available,
         'stock', p.stock, 'customizable', p.customizable, 'popularity', p.popularity)),
         '{{}}'::json)
     from serving.product_state p where p.product_id in (select product_id from candidates))
     as products,
    exists (select 1 from serving.customer_profile where customer_id = %(customer_id)s) as known
"""  # noqa: S608 - splices only constant SQL (queries.TRENDING_FOR); values are bound

SIMILAR = """
with deployed as (
    select model_version from serving.model_deployments where model_name = %(model)s
)
select n.neighbour_id as product_id, p.description, p.category, p.unit_price, p.currency,
       p.available, p.stock, p.customizable, p.popularity, n.score, n.rank,
       (select model_version from deployed) as model_version
from deployed d
join serving.item_neighbours n on n.model_name = %(model)s and n.model_version = d.model_version
join serving.product_state p on p.product_id = n.neighbour_id
where n.product_id = %(product_id)s and p.unit_price > 0 and coalesce(p.available, true)
order by n.rank
limit %(k)s
"""


def _touches(items: list[dict] | None, in_session: bool) -> list[Touch]:
    return [
        Touch(e["product_id"], e["kind"], datetime.fromisoformat(e["event_time"]), in_session)
        for e in items or ()
    ]


def _item(product: dict[str, Any], chosen: Blended, trending_scores: dict) -> dict:
    price = product.get("unit_price")
    return {
        **{c: product.get(c) for c in ITEM_COLUMNS},
        "product_id": chosen.product_id,
        # A price through jsonb is an int when whole; as a float it reads as the row does.
        "unit_price": float(price) if price is not None else None,
        "score": chosen.score,
        "trending_score": trending_scores.get(chosen.product_id),
        "source": chosen.source,
        "because": list(chosen.because),
    }


def personal_params(customer_id: str | None, session_id: str | None) -> dict[str, Any]:
    """The parameters of `PERSONAL` for a customer (None: anonymous) in a session (None: none)."""
    return {
        "model": RECOMMENDER,
        "customer_id": customer_id,
        "session_id": session_id,
        # A customer keeps their arm across sessions; an anonymous shopper, their session's.
        "unit": customer_id if customer_id is not None else session_id,
        "personal": customer_id is not None,
        "popularity": POPULARITY,
        "pool": TRENDING_POOL,
    }


async def personal_recommendations(
    conn: AsyncConnection,
    customer_id: str | None,
    session_id: str | None,
    k: int,
    weights: BlendWeights,
) -> dict:
    """The blend for a customer (None: an anonymous shopper) in a session (None: no session),
    from the version of the shopper's experiment arm (the champion outside an experiment).
    In a shadow experiment's buckets the answer also holds `shadow`: what the challenger would
    have shown, for the exposure log only (the API never sends it)."""
    cur = await conn.execute(PERSONAL, personal_params(customer_id, session_id))
    row = await one_row_async(cur)  # every column is a scalar subquery: always one row
    (
        version,
        variant,
        experiment_id,
        shadow_version,
        as_of,
        trending_as_of,
        session,
        history,
        model,
        neighbours,
        trending,
        products,
        known,
    ) = row
    unavailable = {p for p, v in products.items() if v["available"] is False}
    trending_scores = {p: t for p, _, t in trending}
    # The fold keeps touches newest first; the blend takes them oldest first (its tie order).
    touches = _touches(session, True)[::-1] + _touches(history, False)

    def blended(shadow: bool) -> tuple[list[tuple[str, float]], list[Blended]]:
        model_scores = [(p, s) for p, s, sh in model if sh is shadow and p not in unavailable]
        lent: dict[str, list[tuple[str, float]]] = {}
        for product, neighbour, score, sh in neighbours:
            if sh is not shadow or neighbour in unavailable:
                continue
            if products.get(neighbour, {}).get("unit_price"):
                lent.setdefault(product, []).append((neighbour, score))
        return model_scores, blend(
            model=model_scores,
            touches=touches,
            neighbours=lent,
            trending=[(p, s) for p, s, _ in trending],
            # Touches decay on the trending list's clock, which moves every
            # PULSEMART_TRENDING_REFRESH_S of event time rather than on every fold: between two
            # moves an answer changes only when its own inputs do, so the cache can keep it.
            now=trending_as_of or as_of,
            weights=weights,
            k=k,
        )

    model_scores, chosen = blended(shadow=False)
    items = [_item(products.get(c.product_id, {}), c, trending_scores) for c in chosen]
    answer = {
        "customer_id": customer_id,
        "session_id": session_id,
        "session_known": session is not None,
        "source": "model"
        if model_scores
        else ("personalized_trending" if known and version != POPULARITY else "trending"),
        "sources": sorted({c.source for c in chosen}),
        "model_version": version,
        "variant": variant,
        "experiment_id": experiment_id,
        "as_of": as_of,
        "items": items,
    }
    if shadow_version is not None:
        answer["shadow"] = {
            "model_version": shadow_version,
            "items": [
                {"product_id": c.product_id, "position": n, "because": list(c.because)}
                for n, c in enumerate(blended(shadow=True)[1], start=1)
            ],
        }
    return answer


def answer_tags(answer: dict) -> list:
    """The response cache's tags of a `personal_recommendations` answer's shape: which products
    it shows, in what order, is decided by the customer, the session, the trending list and
    the catalog's attributes (never by a counter); the rows it shows are entries of their own
    (fragments.py)."""
    tags = [TRENDING, CATALOG]
    if answer["customer_id"] is not None:
        tags.append(customer_tag(answer["customer_id"]))
    if answer["session_id"] is not None:
        tags.append(session_tag(answer["session_id"]))
    return tags


async def similar_products(conn: AsyncConnection, product_id: str, k: int) -> dict:
    """The deployed recommender's neighbours of a product that are available now."""
    cur = await conn.execute(SIMILAR, {"model": RECOMMENDER, "product_id": product_id, "k": k})
    rows = await cur.fetchall()
    names = [d.name for d in cur.description or ()]
    items = [dict(zip(names, r, strict=True)) for r in rows]
    version = items[0]["model_version"] if items else None
    for item in items:
        del item["model_version"], item["rank"]
    return {"product_id": product_id, "model_version": version, "items": items}
