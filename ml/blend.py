"""The session-aware blend: batch scores, item neighbours of what the shopper just touched, and
trending products, in one ranked and explained list.

One pure function serves both the API (`GET /customers/{id}/recommendations?session_id=`) and
the offline session replay (`pulsemart model evaluate --sessions`), so the figure the replay
reports is the figure of what is served. Inputs are plain lists the caller has already filtered
to products that are known and available; the blend only ranks them.

Each source is scaled to [0, 1] by its own best score before weighting, so the weights say how
much a source counts, not how large its raw scores happen to be. A touched product lends its
neighbours `kind weight x recency x order x similarity`; recency halves every `half_life_s` of
event time before `now` (its own half-life for the session and for earlier history; `now` is the
fold's newest event time, not the wall clock, so a replay of last year's file decays the same as
live traffic). Order counts the session's products newest first: the latest lends in full, the
one before it `session_decay` of that, and so on, because what a shopper touched last says most
about what they want next, however close together the touches were stamped. Touches with the
same time are ordered as the caller lists them, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

KINDS = ("view", "cart", "purchase")
SOURCES = ("model", "session", "history", "trending")
BECAUSE_LIMIT = 5  # product ids named in an item's `because`, strongest first


@dataclass(frozen=True)
class Touch:
    """A product the shopper viewed, carted or bought, in this session or an earlier one."""

    product_id: str
    kind: str  # one of KINDS
    at: datetime
    in_session: bool


@dataclass(frozen=True)
class BlendWeights:
    """How much each source counts. Defaults: chosen by the session replay (docs/ml.md)."""

    model: float = 1.0
    session: float = 0.3
    history: float = 0.003
    trending: float = 0.05
    view: float = 1.0
    cart: float = 3.0
    purchase: float = 5.0
    half_life_s: float = 1800.0  # in-session touches
    session_decay: float = 0.7  # what each earlier in-session product lends, per step back
    history_half_life_s: float = 14 * 86400.0  # touches from the customer's earlier sessions
    # In-session products of these kinds are not recommended again (already in the basket).
    exclude_kinds: tuple[str, ...] = ("cart", "purchase")

    def kind(self, kind: str) -> float:
        return {"view": self.view, "cart": self.cart, "purchase": self.purchase}.get(kind, 0.0)


@dataclass(frozen=True)
class Blended:
    product_id: str
    score: float
    source: str  # the source that contributed most
    because: tuple[str, ...] = field(default_factory=tuple)


def _scaled(pairs: Sequence[tuple[str, float]]) -> dict[str, float]:
    top = max((score for _, score in pairs), default=0.0)
    if top <= 0:
        # Scores that carry no scale (all zero or negative): rank order only.
        return {product: 1.0 / (rank + 1) for rank, (product, _) in enumerate(pairs)}
    return {product: max(score, 0.0) / top for product, score in pairs}


def _latest_touches(touches: Sequence[Touch], weights: BlendWeights) -> list[tuple[Touch, float]]:
    """One touch per (product, in_session): the strongest kind, at its latest time, with what
    its place in the session's order lets it lend (1 outside the session)."""
    best: dict[tuple[str, bool], Touch] = {}
    latest: dict[tuple[str, bool], tuple[datetime, int]] = {}
    for index, touch in enumerate(touches):
        key = (touch.product_id, touch.in_session)
        held = best.get(key)
        if held is None or (weights.kind(touch.kind), touch.at) > (
            weights.kind(held.kind),
            held.at,
        ):
            best[key] = touch
        latest[key] = max(latest.get(key, (touch.at, index)), (touch.at, index))
    newest_first = sorted(
        (key for key in best if key[1]), key=lambda key: latest[key], reverse=True
    )
    order = {key: weights.session_decay**step for step, key in enumerate(newest_first)}
    return [(touch, order.get(key, 1.0)) for key, touch in best.items()]


def blend(
    *,
    model: Sequence[tuple[str, float]],
    touches: Sequence[Touch],
    neighbours: Mapping[str, Sequence[tuple[str, float]]],
    trending: Sequence[tuple[str, float]],
    now: datetime | None,
    weights: BlendWeights,
    k: int,
) -> list[Blended]:
    """The top `k` products, best first. `model` and `trending` are (product, score) lists;
    `neighbours` maps a touched product to its (neighbour, similarity) list."""
    parts: dict[str, dict[str, float]] = {}
    lent: dict[str, dict[str, float]] = {}  # product -> touched product -> what it lent

    def add(product: str, source: str, value: float) -> None:
        if value > 0:
            per_source = parts.setdefault(product, {})
            per_source[source] = per_source.get(source, 0.0) + value

    for product, value in _scaled(model).items():
        add(product, "model", weights.model * value)
    for product, value in _scaled(trending).items():
        add(product, "trending", weights.trending * value)
    for touch, order in _latest_touches(touches, weights):
        age = max((now - touch.at).total_seconds(), 0.0) if now is not None else 0.0
        half_life = weights.half_life_s if touch.in_session else weights.history_half_life_s
        recency = 0.5 ** (age / half_life) if half_life > 0 else 1.0
        source = "session" if touch.in_session else "history"
        strength = (
            (weights.session if touch.in_session else weights.history)
            * weights.kind(touch.kind)
            * recency
            * order
        )
        for neighbour, value in _scaled(neighbours.get(touch.product_id, ())).items():
            share = strength * value
            add(neighbour, source, share)
            if share > 0:
                by_touch = lent.setdefault(neighbour, {})
                by_touch[touch.product_id] = by_touch.get(touch.product_id, 0.0) + share

    excluded = {t.product_id for t in touches if t.in_session and t.kind in weights.exclude_kinds}
    ranked = sorted(
        ((sum(p.values()), product) for product, p in parts.items() if product not in excluded),
        key=lambda entry: (-entry[0], entry[1]),
    )[:k]
    out = []
    for score, product in ranked:
        per_source = parts[product]
        source = max(SOURCES, key=lambda s: (per_source.get(s, 0.0), -SOURCES.index(s)))
        by_touch = lent.get(product, {})
        because = tuple(sorted(by_touch, key=lambda p: (-by_touch[p], p))[:BECAUSE_LIMIT])
        out.append(Blended(product, score, source, because))
    return out
