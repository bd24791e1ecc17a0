"""Answers kept by the response cache as their shape plus each product's row (cache.Composed).

A search, a recommendation or a similar-products answer lists products, and each item shows the
product's serving row, counters included. A view moves those counters, and views are most of a
shop's events: an answer kept whole would go with every view of any product it shows. Kept
apart, the answer's shape (which products, in what order, with what scores) is an entry
depending only on what decides it, and each row is an entry depending on its product alone,
which the cache's poller reads again as soon as a fold drops it (`refresh_rows`).

Two views of a row: `PRODUCT`, every column (search items), and `ITEM`, the columns a
recommended or similar product shows. `compose` splits an answer just read into those entries
and keeps the split only when putting it back together gives the very bytes of the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import psycopg
from psycopg.rows import dict_row

from pulsemart.serving.cache import Composed, product_tag, row_key
from pulsemart.serving.encode import json_body
from pulsemart.serving.queries import PRODUCT_COLUMNS

PRODUCT, ITEM = "product", "item"
ITEM_COLUMNS = (
    "product_id",
    "description",
    "category",
    "unit_price",
    "currency",
    "available",
    "stock",
    "customizable",
    "popularity",
)
VIEWS = {PRODUCT: PRODUCT_COLUMNS, ITEM: ITEM_COLUMNS}

ROWS = f"""
select {", ".join(PRODUCT_COLUMNS)} from serving.product_state where product_id = any(%s)
"""  # noqa: S608 - a constant

Entry = tuple[Hashable, bytes | Composed, Iterable]


def row_body(view: str, row: dict) -> bytes:
    """A product's row as `view` shows it."""
    return json_body({c: row.get(c) for c in VIEWS[view]})


def compose(answer: dict, body: bytes, view: str) -> tuple[bytes | Composed, list[Entry]]:
    """`answer` (encoded as `body`, its `items` last, each item a `view` row with, after it,
    fields of its own) as a Composed and its row entries; `body` itself and no rows where the
    parts would not give back the same bytes."""
    head = json_body({**answer, "items": []})
    if not head.endswith(b"[]}"):
        return body, []
    rows: list[tuple[Hashable, bytes]] = []
    bodies: list[bytes] = []
    columns = set(VIEWS[view])
    for item in answer["items"]:
        key = row_key(view, item["product_id"])
        rows.append((key, json_body({k: v for k, v in item.items() if k not in columns})))
        bodies.append(row_body(view, item))
    composed = Composed(head[:-2], tuple(rows), b"]}")
    if composed.render(bodies) != body:
        return body, []
    ids = [item["product_id"] for item in answer["items"]]
    return composed, [
        (key, row, [product_tag(product_id)])
        for (key, _), row, product_id in zip(rows, bodies, ids, strict=True)
    ]


def refresh_rows(conn: psycopg.Connection, keys: list[tuple]) -> list[Entry]:
    """The row entries `keys` (cache.row_key) as the serving tables hold them now. A product
    they do not hold shows as its id alone in `ITEM` (a model may score a product the catalog
    does not know yet) and is left out of `PRODUCT` (a search lists only known products)."""
    ids = sorted({key[2] for key in keys})
    with conn.cursor(row_factory=dict_row) as cur:
        rows = {r["product_id"]: r for r in cur.execute(ROWS, (ids,))}
    entries: list[Entry] = []
    for key in keys:
        _, view, product_id = key
        row = rows.get(product_id)
        if row is None and view == PRODUCT:
            continue
        entries.append(
            (key, row_body(view, row or {"product_id": product_id}), [product_tag(product_id)])
        )
    return entries


Composer = Callable[[dict, bytes], tuple[bytes | Composed, list[Entry]]]


def composer(view: str) -> Composer:
    return lambda answer, body: compose(answer, body, view)
