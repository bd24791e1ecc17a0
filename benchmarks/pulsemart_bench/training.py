"""ML training and batch scoring on 1,000,000 interactions, beside the popularity baseline.

Interactions are synthetic but shaped like a shop's: customers draw products from a few
preferred categories with a popularity skew, and re-buy some of them. Each measurement runs in
a forked child, so its peak RSS (ru_maxrss) is its own and not the parent's high-water mark.
The anchor is the popularity baseline (count per product, rank) fitted and scored on the same
interactions: the least work any recommender can do with them.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pulsemart_bench.measure import Measurement


@dataclass(frozen=True)
class TrainingFigures:
    fit: Measurement
    fit_peak_mib: float
    score: Measurement
    score_peak_mib: float


def synthetic_interactions(n: int, customers: int, products: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    categories = 40
    customer = rng.integers(0, customers, n)
    taste = (customer * 7919) % categories  # each customer's favourite category
    in_taste = rng.random(n) < 0.7
    category = np.where(in_taste, taste, rng.integers(0, categories, n))
    per_category = products // categories
    rank = np.minimum(rng.zipf(1.6, n) - 1, per_category - 1)
    product = category * per_category + rank
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "customer_id": pd.Series(customer).map("C{:06d}".format),
            "product_id": pd.Series(product).map("P{:05d}".format),
            "event_time": start + pd.to_timedelta(rng.integers(0, 180 * 86_400, n), unit="s"),
            "event_type": "purchase",
            "quantity": rng.integers(1, 6, n).astype(float),
            "unit_price": rng.uniform(0.5, 20, n).round(2),
            "order_id": None,
            "session_id": None,
            "country": None,
            "description": None,
        }
    )


def _child(conn, params, frame: pd.DataFrame, k: int) -> None:
    from ml.recommenders import make_recommender

    t0 = time.perf_counter()
    model = make_recommender(params).fit(frame)
    fit_s = time.perf_counter() - t0
    fit_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    customers = frame["customer_id"].unique()
    t0 = time.perf_counter()
    rows = len(model.recommend(customers, k=k))
    score_s = time.perf_counter() - t0
    score_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send((fit_s, fit_peak, rows, score_s, score_peak))
    conn.close()


def measure(name: str, params: dict | None, frame: pd.DataFrame, k: int = 10) -> TrainingFigures:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(child, params, frame, k))
    process.start()
    fit_s, fit_peak, rows, score_s, score_peak = parent.recv()
    process.join()
    return TrainingFigures(
        Measurement(f"{name}: fit", len(frame), 0, fit_s, "interactions"),
        fit_peak,
        Measurement(f"{name}: batch scoring, top {k} for every customer", rows, 0, score_s, "rows"),
        score_peak,
    )


def section(command: str, interactions: int, echo):
    from ml.recommenders import DEFAULT_PARAMS
    from pulsemart_bench import machine
    from pulsemart_bench.report import Section, Table, rate_table

    customers, products = max(interactions // 10, 100), max(interactions // 100, 400)
    echo(
        f"bench training: {interactions:,} interactions, {customers:,} customers, {products:,} products"
    )
    frame = synthetic_interactions(interactions, customers, products)
    echo("  popularity baseline (anchor)")
    anchor = measure("popularity baseline", {"model": "popularity"}, frame)
    echo("  default recommender")
    model = measure(f"default recommender ({DEFAULT_PARAMS['model']})", None, frame)
    peaks = Table(
        ["Model", "Fit s", "Peak RSS after fit MiB", "Score s", "Peak RSS after scoring MiB"]
    )
    for figures in (anchor, model):
        peaks.rows.append(
            [
                figures.fit.name.split(":")[0],
                f"{figures.fit.seconds:.1f}",
                f"{figures.fit_peak_mib:,.0f}",
                f"{figures.score.seconds:.1f}",
                f"{figures.score_peak_mib:,.0f}",
            ]
        )
    return Section(
        key="training",
        title="ML: recommender training and batch scoring",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            f"{interactions:,} synthetic purchases by {customers:,} customers of {products:,} "
            "products (70% from a favourite category, Zipf popularity within it, six months). "
            "Each model is fitted and then scores the top 10 for every customer, in a forked "
            "child whose peak RSS is its own (the parent's frame, shared copy-on-write, counts "
            "in it). The anchor is the popularity baseline on the same interactions."
        ),
        tables=[
            rate_table(
                [
                    (anchor.fit, None),
                    (model.fit, anchor.fit),
                    (anchor.score, None),
                    (model.score, anchor.score),
                ]
            ),
            peaks,
        ],
    )
