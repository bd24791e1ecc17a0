"""What comes next: item-to-item rules from the order in which shoppers fill a basket.

The session blend asks "given what this shopper just put in the basket, what goes in next?".
The models' own similarities answer "who buys A also buys B" over a customer's whole history,
which says little about the next item. Sequential rules answer it directly (Ludewig and
Jannach's "SR", a strong simple baseline for session-based recommendation): within each basket
(an order; where there is no order id, a session), every product lends to the products that
came after it `1 / gap` (gap: how many distinct products later), and to those before it
`BACKWARD / gap`, within `WINDOW` positions. Summed over every basket of the training period and
pruned to the strongest `n` per product, they are what a recommender version publishes as its
item neighbours (ml.neighbours.published_neighbours).

Order within a basket is the frame's row order (ml.interactions keeps a file's line order; the
datamart's interactions come ordered by time), so the rules learn from the stream as it arrived.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

# Neighbours kept per product, rules and similarities alike: the blend lends from at most this
# many per touched product. Chosen with the session replay (docs/ml.md); 3,300 products x 30 is
# about 100,000 rows per version, a COPY of well under a second.
NEIGHBOURS_PER_PRODUCT = 30
WINDOW = 50  # positions apart within one basket that still lend (bounds the work per line)
BACKWARD = 0.5  # what a product lends to the ones before it, against 1 for the ones after


def basket_keys(interactions: pd.DataFrame) -> pd.Series:
    """Each row's basket: its order id, else its session id (None where it has neither)."""
    orders = interactions.get("order_id")
    sessions = interactions.get("session_id")
    keys = pd.Series(None, index=interactions.index, dtype=object)
    if sessions is not None:
        keys = ("s:" + sessions.astype(str)).where(sessions.notna(), keys)
    if orders is not None:
        keys = ("o:" + orders.astype(str)).where(orders.notna(), keys)
    return keys


def sequence_rules(
    interactions: pd.DataFrame,
    products: pd.Index,
    window: int = WINDOW,
    backward: float = BACKWARD,
) -> sp.csr_matrix:
    """products x products: row p, column q is what p lends q over every basket.

    Only `products` count (others are dropped); a product repeated in a basket counts at its
    first position.
    """
    keys = basket_keys(interactions)
    lines = pd.DataFrame(
        {"basket": keys.to_numpy(), "product": products.get_indexer(interactions["product_id"])}
    )
    lines = lines[lines["basket"].notna() & (lines["product"] >= 0)]
    lines = lines.drop_duplicates(["basket", "product"])  # keeps the first position
    # Baskets as runs of consecutive rows, each in its own order (a stable sort by key).
    codes = pd.factorize(lines["basket"])[0]
    order = np.argsort(codes, kind="stable")
    basket = codes[order]
    product = lines["product"].to_numpy()[order]
    rows, cols, values = [], [], []
    for gap in range(1, window + 1):
        same = basket[gap:] == basket[:-gap]
        if not same.any():
            break
        before, after = product[:-gap][same], product[gap:][same]
        rows += [before, after]
        cols += [after, before]
        values += [np.full(len(before), 1.0 / gap), np.full(len(before), backward / gap)]
    n = len(products)
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float64,
    )
    matrix.sum_duplicates()
    matrix.setdiag(0)
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def top_per_row(matrix: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, value) of each row's `n` largest positive values, off the diagonal, sorted
    by row and then by value descending (ties by column)."""
    coo = matrix.tocoo()
    keep = (coo.data > 0) & (coo.row != coo.col)
    row, col, value = coo.row[keep], coo.col[keep], coo.data[keep]
    order = np.lexsort((col, -value, row))
    row, col, value = row[order], col[order], value[order]
    starts = np.searchsorted(row, row, side="left")
    first = np.arange(len(row)) - starts < n
    return row[first], col[first], value[first]


def pruned(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """`matrix` with only each row's `n` strongest entries (what a fitted model keeps)."""
    row, col, value = top_per_row(matrix, n)
    return sp.csr_matrix((value, (row, col)), shape=matrix.shape, dtype=np.float32)
