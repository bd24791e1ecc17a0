"""Timestamps in every format this shop's sources send, normalised to ISO-8601 UTC.

Formats seen: the contract's own (`2024-03-01T10:00:00.000Z`, any offset), US short dates
from the Online Retail data (`12/1/10 8:26`), zone-less ISO with a space or a `T`
(`2024-03-01 10:00:00`), and epoch milliseconds (a number or digits). Zone-less values are
read in `assume_timezone` (UTC by default: the shop's sources write UTC). All work is done
on whole columns with pandas; nothing loops over rows in Python.
"""

from __future__ import annotations

import re

import pandas as pd

CANONICAL = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})"
# name -> (regex the text must match in full, strptime format for pandas)
TEXT_FORMATS: dict[str, tuple[str, str | None]] = {
    "iso": (CANONICAL, None),
    "us_short": (r"\d{1,2}/\d{1,2}/\d{2} \d{1,2}:\d{2}", "%m/%d/%y %H:%M"),
    "us_long": (r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}(?::\d{2})?", None),
    "iso_space_no_zone": (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?", None),
    "iso_no_zone": (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?", None),
}
# Epoch milliseconds between 1973 and 2286: a number outside is not read as a time.
EPOCH_MS_RANGE = (1e11, 1e13)
# Precision each format records, so an evaluation can compare at the precision that was sent.
PRECISION = {
    "us_short": "min",
    "us_long": "s",
    "iso_space_no_zone": "s",
    "iso_no_zone": "s",
    "epoch_millis": "ms",
    "iso": "us",
}


# Up to this many values, a loop over compiled patterns beats pandas' string methods, whose
# set-up costs milliseconds per call: the real-time lane decides batches of a few events.
SMALL = 64
_COMPILED = {name: re.compile(pattern) for name, (pattern, _) in TEXT_FORMATS.items()}
# ASCII digits only: str.isdigit-style Unicode digits (Arabic-Indic, ...) are not epoch millis,
# and pandas cannot convert them to numbers.
_DIGITS = re.compile(r"[0-9]{11,13}")


def _classify_one(value) -> str | None:
    kind = type(value)
    if kind is str:
        text = value.strip()
        for name, pattern in _COMPILED.items():
            if pattern.fullmatch(text):
                return name
        if not _DIGITS.fullmatch(text):
            return None
        number = float(text)
    elif kind is int or kind is float:
        number = float(value)
    else:
        return None
    in_range = EPOCH_MS_RANGE[0] <= number <= EPOCH_MS_RANGE[1] and number % 1 == 0
    return "epoch_millis" if in_range else None


def classify(values: pd.Series) -> pd.Series:
    """The format name of each value (None when no known format fits)."""
    if len(values) <= SMALL:
        return pd.Series([_classify_one(v) for v in values], index=values.index, dtype=object)
    out = pd.Series(None, index=values.index, dtype=object)
    types = values.map(type)
    text = values[types == str].str.strip()
    rest = text
    for name, (pattern, _) in TEXT_FORMATS.items():
        if rest.empty:
            break
        hit = rest.str.fullmatch(pattern).astype(bool)
        out.loc[rest.index[hit.to_numpy()]] = name
        rest = rest[~hit.to_numpy()]
    digits = rest[rest.str.fullmatch(_DIGITS.pattern).astype(bool).to_numpy()]
    numbers = values[types.isin([int, float])]
    numbers = pd.concat([numbers, pd.to_numeric(digits)]).astype(float)
    in_range = numbers.between(*EPOCH_MS_RANGE) & (numbers % 1 == 0)
    out.loc[in_range[in_range].index] = "epoch_millis"
    return out


def to_utc(
    values: pd.Series, formats: pd.Series | None = None, assume_timezone: str = "UTC"
) -> pd.Series:
    """Each value as a tz-aware UTC timestamp (NaT when unreadable)."""
    formats = classify(values) if formats is None else formats
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    for name, (_, fmt) in TEXT_FORMATS.items():
        idx = formats.index[formats == name]
        if not len(idx):
            continue
        text = values.loc[idx].astype(str).str.strip()
        if name == "iso":
            parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        else:
            naive = pd.to_datetime(
                text, format=fmt or ("mixed" if name == "us_long" else "ISO8601"), errors="coerce"
            )
            parsed = _localise(naive, assume_timezone)
        out.loc[idx] = parsed.astype("datetime64[ns, UTC]")
    idx = formats.index[formats == "epoch_millis"]
    if len(idx):
        millis = pd.to_numeric(values.loc[idx].astype(str)).astype("int64")
        out.loc[idx] = pd.to_datetime(millis, unit="ms", utc=True).astype("datetime64[ns, UTC]")
    return out


def to_canonical(moments: pd.Series) -> pd.Series:
    """`2024-03-01T10:00:00.000Z`: the contract's form, millisecond precision, UTC."""
    text = moments.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text.str.slice(0, 23) + "Z").where(moments.notna(), None)


def _localise(naive: pd.Series, timezone: str) -> pd.Series:
    if getattr(naive.dt, "tz", None) is not None:
        return naive.dt.tz_convert("UTC")
    return naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
