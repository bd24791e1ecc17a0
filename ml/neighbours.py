"""Item-to-item neighbours of a fitted recommender: what the blend lends a touched product.

A recommender version publishes, next to its per-customer scores, the top-N products most like
each product it was trained on (serving.item_neighbours), so the API can answer for what a
shopper touched a second ago without refitting anything. Each model says "alike" in its own
terms:

- item_knn: its `similarity_` matrix, the shrunk cosine it ranks with (rows are a product's
  neighbours, already pruned to its `neighbours` largest);
- svd: the cosine of the products' latent factors (negative cosines are dropped: "unlike" lends
  nothing);
- popularity, and any model without item-to-item state: the shrunk cosine of plain customer
  co-occurrence (binary matrix). A popularity list is the same for everyone and cannot say what
  goes with a product; serving it with no neighbours at all would make a session invisible
  whenever popularity is the champion, so it publishes the simplest neighbours there are.

What a version publishes (`published_neighbours`) is its sequential rules (ml.sequences:
what shoppers put in the basket next, learned at fit time from the same interactions) where a
product has any, and the similarity above for the products no basket ordered. The session
replay chose that (docs/ml.md): the next item of a basket is what a session asks for.

Scores are the similarity (positive, best first, rank 1..N); a product is never its own
neighbour; every product_id and neighbour_id is one the model was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommenders.base import Recommender
from ml.sequences import NEIGHBOURS_PER_PRODUCT, top_per_row

NEIGHBOUR_COLUMNS = ("product_id", "rank", "neighbour_id", "score")
# Shrinkage of the co-occurrence fallback: a pair two customers share counts for less than a
# pair two hundred share (the item_knn default's reasoning, at a smaller catalog-free value).
FALLBACK_SHRINK = 10.0
BLOCK = 1024  # products per dense block (BLOCK x products float32: 13 MB at 3,300 products)


def item_neighbours(model: Recommender, n: int = NEIGHBOURS_PER_PRODUCT) -> pd.DataFrame:
    """The top `n` neighbours of every product of a fitted `model`, as NEIGHBOUR_COLUMNS."""
    if not hasattr(model, "matrix_"):
        raise RuntimeError(f"{model.name}: call fit() before item_neighbours()")
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    similarity = getattr(model, "similarity_", None)
    factors = getattr(model, "item_factors_", None)
    if similarity is not None:
        top = top_per_row(sp.csr_matrix(similarity), n)
    elif factors is not None:
        top = _top_cosine(np.asarray(factors, dtype=np.float32), n)
    else:
        top = top_per_row(cooccurrence(model.matrix_.values), n)
    return _frame(top, model.products)


def published_neighbours(model: Recommender, n: int = NEIGHBOURS_PER_PRODUCT) -> pd.DataFrame:
    """What a version publishes: its sequential rules where a product has any, the model's own
    similarity (`item_neighbours`) for the rest, as NEIGHBOUR_COLUMNS."""
    own = item_neighbours(model, n)
    sequences = getattr(model, "sequences_", None)  # None: a version fitted before they existed
    if sequences is None or sequences.nnz == 0:
        return own
    ruled = _frame(top_per_row(sp.csr_matrix(sequences), n), model.products)
    rest = own[~own["product_id"].isin(ruled["product_id"].unique())]
    return pd.concat([ruled, rest], ignore_index=True)


def from_similarity(similarity: sp.csr_matrix, products: pd.Index, n: int) -> pd.DataFrame:
    """The top `n` of each row of a products x products similarity, as NEIGHBOUR_COLUMNS."""
    return _frame(top_per_row(sp.csr_matrix(similarity), n), products)


def _frame(top: tuple[np.ndarray, np.ndarray, np.ndarray], products: pd.Index) -> pd.DataFrame:
    rows, cols, scores = top
    names = products.to_numpy()
    frame = pd.DataFrame(
        {
            "product_id": names[rows].astype(str),
            "neighbour_id": names[cols].astype(str),
            "score": scores.astype(float),
        }
    )
    frame = frame.sort_values(
        ["product_id", "score", "neighbour_id"], ascending=[True, False, True]
    )
    frame["rank"] = frame.groupby("product_id", sort=False).cumcount() + 1
    return frame[list(NEIGHBOUR_COLUMNS)].reset_index(drop=True)


def cooccurrence(values: sp.csr_matrix, shrink: float = FALLBACK_SHRINK) -> sp.csr_matrix:
    """Products x products shrunk cosine of who bought what (each customer-product cell as 1)."""
    binary = sp.csr_matrix(values, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    columns = binary.tocsc()
    counts = np.asarray(columns.sum(axis=0)).ravel()
    dots = (columns.T @ columns).tocoo()
    keep = dots.row != dots.col
    norms = np.sqrt(counts)
    data = dots.data[keep] / (norms[dots.row[keep]] * norms[dots.col[keep]] + shrink)
    n = values.shape[1]
    return sp.csr_matrix((data, (dots.row[keep], dots.col[keep])), shape=(n, n))


def neighbour_lists(frame: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """NEIGHBOUR_COLUMNS rows as ml.blend takes them: product -> [(neighbour, score)], by rank."""
    ordered = frame.sort_values(["product_id", "rank"], kind="stable")
    lists: dict[str, list[tuple[str, float]]] = {}
    for product, neighbour, score in zip(
        ordered["product_id"], ordered["neighbour_id"], ordered["score"], strict=True
    ):
        lists.setdefault(str(product), []).append((str(neighbour), float(score)))
    return lists


def unknown_products(frame: pd.DataFrame, trained: Sequence[str] | pd.Index) -> int:
    """Rows whose product_id or neighbour_id is not among the `trained` products."""
    known = pd.Index(trained).astype(str)
    outside = ~frame["product_id"].astype(str).isin(known) | ~frame["neighbour_id"].astype(
        str
    ).isin(known)
    return int(outside.sum())


def coverage(frame: pd.DataFrame, catalog: Sequence[str] | pd.Index | Mapping) -> float:
    """Share of `catalog` products that have at least one neighbour (0 for an empty catalog)."""
    products = pd.Index(list(catalog)).astype(str).unique()
    if len(products) == 0:
        return 0.0
    return float(products.isin(frame["product_id"].astype(str).unique()).mean())


def _top_cosine(factors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each product's `n` most cosine-similar products by their columns of `factors`."""
    vectors = factors.T  # products x factors
    norms = np.linalg.norm(vectors, axis=1)
    unit = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors), where=norms[:, None] > 0)
    count = unit.shape[0]
    keep = min(n, count - 1)
    rows, cols, values = [], [], []
    if keep < 1:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    for start in range(0, count, BLOCK):
        block = unit[start : start + BLOCK] @ unit.T
        index = np.arange(block.shape[0])
        block[index, start + index] = -np.inf  # never its own neighbour
        top = np.argpartition(-block, keep - 1, axis=1)[:, :keep]
        rows.append(np.repeat(start + index, keep))
        cols.append(top.ravel())
        values.append(np.take_along_axis(block, top, axis=1).ravel())
    row, col, value = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    positive = value > 0
    return row[positive], col[positive], value[positive]
