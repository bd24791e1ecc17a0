"""Transaction files (Online Retail, CSV, xlsx or Parquet) as the models' interactions.

`pulsemart.stream.retail_files` reads both layouts and every format, `pulsemart.quality`
dates the lines and keeps the fee codes (rule `line.fee_code`); `ml.interactions` turns the
lines into purchases with those codes as an argument, so `ml` stays pure modelling.

    python -m pulsemart.ml_store.retail PATH              the offline evaluation report
    python -m pulsemart.ml_store.retail --variants PATH   the comparison behind the defaults
    python -m pulsemart.ml_store.retail --sessions-grid PATH
                                      the session replay's grid behind the blend's weights
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from ml.interactions import FeeCodes, from_transactions

# The rule that books postage, fees, discounts and vouchers as lines with their own codes.
FEE_RULE_ID = "line.fee_code"


@lru_cache(maxsize=1)
def fee_codes() -> FeeCodes:
    """The quality rule set's fee codes: the platform's one definition of "not a product"."""
    from pulsemart.quality.rules import load_rules

    return FeeCodes.from_params(load_rules().rule(FEE_RULE_ID).detect.params)


def load_interactions(path: str | Path) -> pd.DataFrame:
    """The purchases in a transaction file, as canonical interactions (ml.interactions)."""
    from pulsemart.quality.timestamps import to_utc
    from pulsemart.stream.retail_files import load_transactions

    raw = load_transactions(path)
    raw["invoice_date"] = to_utc(raw["invoice_date"])
    raw.attrs["source"] = str(path)
    return from_transactions(raw, fee_codes())


def evaluate_file(path: str | Path, k: int = 10) -> dict[str, Any]:
    """Load `path`, split 75/25 in time, measure every model (ml.evaluate)."""
    from ml.evaluate import evaluate_interactions

    return evaluate_interactions(load_interactions(path), k)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    mode = args[0] if args[:1] in (["--variants"], ["--sessions-grid"]) else None
    if mode:
        args = args[1:]
    if len(args) != 1:
        print(
            "usage: python -m pulsemart.ml_store.retail [--variants|--sessions-grid] PATH",
            file=sys.stderr,
        )
        return 2
    if mode == "--sessions-grid":
        return sessions_grid(args[0])
    variants = mode == "--variants"
    if variants:
        from ml.variants import (
            PROPENSITY_COLUMNS,
            compare_propensity,
            compare_variants,
            to_markdown,
        )

        interactions = load_interactions(args[0])
        print(to_markdown(compare_variants(interactions)))
        print()
        print(to_markdown(compare_propensity(interactions), PROPENSITY_COLUMNS, "model"))
        return 0
    from ml.evaluate import format_report

    print(format_report(evaluate_file(args[0])))
    return 0


def sessions_grid(path: str) -> int:
    """The blend's weight grid on a validation split of the train period, then the test
    figures with the best point (ml.session_tuning), as markdown tables."""
    from ml.session_tuning import to_markdown, tune

    def progress(done: int, total: int) -> None:
        print(f"sessions grid: {done}/{total}", file=sys.stderr, flush=True)

    result = tune(load_interactions(path), progress=progress)
    columns = ["session", "session_decay", "history", "trending", "hr_at_10", "ndcg_at_10", "steps"]
    print("validation (train period: first 75% against last 25%), best first\n")
    print(to_markdown(result["grid"], columns))
    print(f"\nchosen: {result['chosen']}\n\nablations (validation, chosen weights)\n")
    print(to_markdown(result["ablations"], ["variant", "hr_at_10", "ndcg_at_10", "steps"]))
    print("\ntest (75/25 split of the file)\n")
    print(to_markdown(result["test"], ["name", "hr_at_10", "ndcg_at_10", "steps"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
