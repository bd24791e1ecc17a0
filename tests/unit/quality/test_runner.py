"""The runner's shortcuts must not change a decision: a detector is skipped on a field no row
has only if it cannot fire on a null, and a repair is seen by the rules after it."""

import json

import numpy as np
import pandas as pd
import pytest

from pulsemart.quality.context import BatchContext
from pulsemart.quality.detectors import DETECTORS, FIRES_ON_NULL
from pulsemart.quality.engine import default_rules
from tests.unit.quality.conftest import NOW, catalog_with, decide, only, order, product

# Parameters each detector needs, as the rule set gives them.
PARAMS = {
    rule.detect.name: rule.detect.params
    for rule in default_rules().rules
    if rule.detect.name not in FIRES_ON_NULL
}


def _context(frame):
    catalog = catalog_with(product())
    return BatchContext(
        now=NOW,
        settings=default_rules().settings,
        catalog=catalog,
        known_products=set(catalog.products),
        keys=pd.Series(None, index=frame.index, dtype=object),
        coordinates=pd.DataFrame(
            {"topic": "shop.events", "partition": 0, "offset": range(len(frame))},
            index=frame.index,
        ),
        events=frame,
    )


@pytest.mark.parametrize("name", sorted(set(DETECTORS) - FIRES_ON_NULL))
@pytest.mark.parametrize("null", [None, np.nan])
def test_a_detector_the_runner_skips_on_empty_fields_never_fires_on_a_null(name, null):
    field = "unit_price" if name != "stock_adjustment" else "quantity"
    frame = pd.DataFrame(
        {"_event_type": ["product_viewed"] * 3, field: [null] * 3, "event_time": [null] * 3},
        dtype=object,
    )
    frame.attrs["scope"] = "event"
    result = DETECTORS[name](frame, field, _context(frame), **PARAMS.get(name, {}))
    masks = result.values() if isinstance(result, dict) else [result]
    assert not any(bool(mask.fillna(False).astype(bool).any()) for mask in masks)


@pytest.mark.parametrize("name", sorted(FIRES_ON_NULL))
def test_the_detectors_kept_on_empty_fields_do_fire_on_a_null(name):
    frame = pd.DataFrame({"_event_type": ["product_viewed"], "unit_price": [None]}, dtype=object)
    assert bool(DETECTORS[name](frame, "unit_price", _context(frame)).any())


def test_a_later_rule_sees_an_earlier_repair_of_the_same_rows():
    # Both rules take the order lines. "-1" is text: number_as_text makes it -1.0, which
    # nonpositive then replaces by the catalog price. A runner that kept the rows as they were
    # before the first repair would see text, find nothing nonpositive, and keep -1.
    line = {"line_id": 1, "product_id": "P00001", "quantity": 2, "unit_price": "-1"}
    result = decide(order(lines=[line]), catalog=catalog_with(product()))
    decision, row = only(result)
    assert decision == "fixed"
    repairs = [r["rule_id"] for r in json.loads(row["repairs"])]
    assert repairs == ["line.type.number_as_text", "line.price.nonpositive"]
    assert result.order_lines["unit_price"].tolist() == [2.55]
