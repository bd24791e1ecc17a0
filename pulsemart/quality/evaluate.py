"""Scoring the engine's decisions against the simulator's truth file.

Pure functions over frames shaped like `EngineResult.clean`, `.quarantine` and `.held`
(concatenated over batches) and truth records `{event_id, corruption, field, original}`.

- detection recall: corrupted records that were not released, or released with a repair or
  a warning flag;
- repair precision: repairs with confidence >= the fix threshold whose value equals the
  original's (timestamps at the precision the corrupted value carried: "3/1/24 10:00"
  names a minute, so it is compared with the original's minute);
- clean-quarantine rate: clean records not released (quarantined or still held);
- calibration: released records bucketed by confidence; a record is correct when its payload
  is the original (clean records: no repair at all; corrupted ones: the corrupted field
  repaired and every repair equal to the original); expected calibration error (ECE).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

from pulsemart.quality.timestamps import PRECISION, classify, to_utc

_PATH = re.compile(r"^(?P<name>\w+)(?:\[(?P<pos>\d+)\]\.(?P<sub>\w+))?$")


def load_truth(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def evaluate(
    clean: pd.DataFrame,
    quarantine: pd.DataFrame,
    held: pd.DataFrame | None,
    truth: Iterable[dict],
    fix_threshold: float = 0.8,
    buckets: int = 10,
) -> dict:
    truth_by_id: dict[str, list[dict]] = defaultdict(list)
    for record in truth:
        truth_by_id[record["event_id"]].append(record)
    released = defaultdict(list)
    for row in clean[["event_id", "confidence", "repairs", "flags", "decision"]].itertuples(
        index=False
    ):
        released[row.event_id].append(row)
    stopped = Counter(quarantine["event_id"].dropna())
    dup_stopped = Counter(
        e
        for e, r in zip(quarantine["event_id"], quarantine["reasons"], strict=True)
        if isinstance(e, str) and "duplicate" in json.loads(r)
    )
    if held is not None and len(held):
        stopped.update(held["event_id"].dropna())

    detected = corrupted = 0
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    repairs_ok = repairs_total = 0
    calib: list[tuple[float, bool]] = []
    clean_total = clean_stopped = 0
    ids = set(truth_by_id) | set(released) | set(stopped)
    for event_id in ids:
        records = truth_by_id.get(event_id, [])
        dirty = [t for t in records if t["corruption"] != "duplicate"]
        dups = len(records) - len(dirty)
        rel = released.get(event_id, [])
        for t in dirty:  # a corrupted id is sent once: its one record is the corrupted one
            corrupted += 1
            hit = not rel or any(_signalled(r) for r in rel)
            detected += hit
            by_kind[t["corruption"]][0] += hit
            by_kind[t["corruption"]][1] += 1
        if dups:
            corrupted += dups
            dups_stopped = min(dups, dup_stopped.get(event_id, 0))
            detected += dups_stopped
            by_kind["duplicate"][0] += dups_stopped
            by_kind["duplicate"][1] += dups
        if not dirty:
            clean_total += 1
            clean_stopped += not rel
        original = dirty[0]["original"] if dirty else (records[0]["original"] if records else None)
        for n, r in enumerate(rel):
            entries = [e for e in json.loads(r.repairs) if e.get("after") is not None]
            checks = [
                _equal(e, original) if dirty and original is not None else False for e in entries
            ]
            for entry, ok in zip(entries, checks, strict=True):
                if entry["confidence"] is not None and entry["confidence"] >= fix_threshold:
                    repairs_total += 1
                    repairs_ok += ok
            if dirty:
                fixed_fields = {e["field"] for e in entries}
                correct = dirty[0]["field"] in fixed_fields and all(checks)
            else:
                correct = not entries and n == 0
            calib.append((float(r.confidence), bool(correct)))
    return {
        "records_corrupted": corrupted,
        "detection_recall": _ratio(detected, corrupted),
        "recall_by_corruption": {k: _ratio(*v) for k, v in sorted(by_kind.items())},
        "repairs_scored": repairs_total,
        "repair_precision": _ratio(repairs_ok, repairs_total),
        "clean_records": clean_total,
        "clean_quarantined": clean_stopped,
        "clean_quarantine_rate": _ratio(clean_stopped, clean_total),
        **calibration(calib, buckets),
    }


def calibration(pairs: list[tuple[float, bool]], buckets: int = 10) -> dict:
    """Share correct per confidence bucket and the expected calibration error."""
    table: defaultdict[int, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for confidence, correct in pairs:
        b = min(int(confidence * buckets), buckets - 1)
        table[b][0] += 1
        table[b][1] += confidence
        table[b][2] += correct
    n = sum(v[0] for v in table.values())
    rows: list[dict[str, Any]] = [
        {
            "bucket": f"[{b / buckets:.1f}, {(b + 1) / buckets:.1f}]",
            "records": c,
            "mean_confidence": s / c,
            "share_correct": k / c,
        }
        for b, (c, s, k) in sorted(table.items())
    ]
    ece = (
        sum(r["records"] / n * abs(r["mean_confidence"] - r["share_correct"]) for r in rows)
        if n
        else math.nan
    )
    return {"calibration": rows, "ece": ece}


def _signalled(row) -> bool:
    if any(True for _ in json.loads(row.repairs)):
        return True
    return any(f.get("severity") == "warning" for f in json.loads(row.flags))


def _equal(entry: dict, original: dict) -> bool:
    try:
        expected = _at(original, entry["field"])
    except (KeyError, IndexError, TypeError):
        return False
    after = entry["after"]
    if entry["field"] == "event_time":
        before = pd.Series([entry["before"]], dtype=object)
        unit = PRECISION.get(classify(before).iloc[0], "ms")
        moments = to_utc(pd.Series([after, expected], dtype=object))
        return bool(moments.iloc[0] == moments.iloc[1].floor(unit))
    if isinstance(after, (int, float)) and isinstance(expected, (int, float)):
        return abs(float(after) - float(expected)) < 1e-9
    return after == expected


def _at(event: dict, path: str):
    match = _PATH.match(path)
    if match is None:
        raise KeyError(path)
    value = event[match["name"]]
    if match["pos"] is not None:
        value = value[int(match["pos"])][match["sub"]]
    return value


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan
