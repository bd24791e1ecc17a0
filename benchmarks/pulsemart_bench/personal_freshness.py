"""Freshness of personalization: produce a view → a recommendation whose `because` names it.

Run inside `freshness.freshness`, under the same `pulsemart up` and right after its price
probes, so both rows share a run. The probe products get a deployed neighbour list of their own
(each probe product's neighbour is the next one), written as a scored recommender version
would write it; the bench's home is temporary, so no real deployment is displaced. Each probe is
a `product_viewed` by a new customer in a new session; the customer's recommendations with
that session are polled until an item's `because` names the viewed product.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from ml.names import RECOMMENDER
from pulsemart.config import Settings
from pulsemart.store.db import connect_migrated

VERSION = "bench-neighbours"


def deploy_probe_neighbours(settings: Settings, product_ids: list[str]) -> None:
    with connect_migrated(settings) as conn, conn.transaction():
        conn.execute(
            "delete from serving.item_neighbours where model_name = %s and model_version = %s",
            (RECOMMENDER, VERSION),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into serving.item_neighbours (model_name, model_version, product_id, "
                "rank, neighbour_id, score) values (%s, %s, %s, 1, %s, 1.0)",
                [
                    (RECOMMENDER, VERSION, pid, product_ids[(i + 1) % len(product_ids)])
                    for i, pid in enumerate(product_ids)
                ],
            )
        conn.execute(
            "insert into serving.model_deployments (model_name, model_version, deployed_by) "
            "values (%s, %s, 'bench') on conflict (model_name) do update set "
            "model_version = excluded.model_version, deployed_by = excluded.deployed_by",
            (RECOMMENDER, VERSION),
        )


def _explained(client: httpx.Client, customer: str, session: str, product: str) -> bool:
    response = client.get(
        f"/customers/{customer}/recommendations", params={"session_id": session, "k": 10}
    )
    if response.status_code != 200:
        return False
    return any(product in item["because"] for item in response.json()["items"])


def probe_because(
    client: httpx.Client,
    send: Callable[[dict], None],
    product_ids: list[str],
    probes: int,
    poll_s: float,
    timeout_s: float = 30.0,
) -> tuple[list[float], int]:
    """Seconds from produce to an explained recommendation, per probe seen; and probes sent."""
    from pulsemart.contracts import build_event

    seen: list[float] = []
    for i in range(probes):
        tag = uuid.uuid4().hex[:8]
        customer, session = f"BENCHC{tag}", f"BENCHS{tag}"
        product = product_ids[i % len(product_ids)]
        event = build_event(
            "product_viewed",
            event_time=datetime.now(UTC),
            source="bench",
            customer_id=customer,
            session_id=session,
            product_id=product,
            category="bench_probe",
            unit_price=1.0,
        )
        sent = time.time()
        send(event)
        deadline = sent + timeout_s
        while time.time() < deadline:
            if _explained(client, customer, session, product):
                seen.append(time.time() - sent)
                break
            time.sleep(poll_s)
    return seen, probes
