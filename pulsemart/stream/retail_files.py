"""Loading the Online Retail shop's transaction files (CSV, Excel, Parquet) as found.

The replay hands values to the stream untouched — repairing them is the rule engine's job — so
this loader only renames columns and turns each cell into the plain Python value JSON can carry:
text columns become `str` (an Excel or Parquet number such as a stock code 85123 or a customer
17850.0 becomes "85123" / "17850", the text a CSV would hold), Quantity and UnitPrice stay
numbers when they parse as numbers and stay text when they do not, datetimes become ISO strings,
and every kind of missing value becomes None. The same rows in any of the three formats
therefore load to the same frame.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import pandas as pd

FIELDS = (
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "unit_price",
    "customer_id",
    "country",
)
LAYOUTS = {
    "Online Retail": (
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ),
    "Online Retail II": (
        "Invoice",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "Price",
        "Customer ID",
        "Country",
    ),
}
SUFFIXES = (".csv", ".xlsx", ".xls", ".parquet")
# A CSV written by Excel on Windows (as the UCI extracts often are) is not UTF-8; Latin-1
# decodes any byte, so it is the last resort rather than a guess that can fail.
CSV_ENCODINGS = ("utf-8-sig", "latin-1")
_FLOAT_ZERO = re.compile(r"^([+-]?\d+)\.0+$")


class ReplayInputError(ValueError):
    """A transaction file cannot be replayed; the message names the file and the problem."""


def load_transactions(path: str | Path) -> pd.DataFrame:
    """Read one transaction file into a frame with normalised column names.

    Columns: line_id (`<file stem>:<0-based data row>`), then FIELDS. All columns hold Python
    values (object dtype); the index is the row number.
    """
    path = Path(path)
    raw = _read_table(path)
    columns = _resolve_columns(path.name, [str(c) for c in raw.columns])
    data = {"line_id": [f"{path.stem}:{i}" for i in range(len(raw))]}
    for field, source in zip(FIELDS, columns, strict=True):
        values = raw.iloc[:, source].tolist()
        if field in ("quantity", "unit_price"):
            data[field] = [_number(v) for v in values]
        elif field == "customer_id":
            data[field] = [_customer(v) for v in values]
        else:
            data[field] = [_text(v) for v in values]
    return pd.DataFrame(data, dtype=object)


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReplayInputError(
            f"{name}: unknown file type '{path.suffix}' (expected {', '.join(SUFFIXES)})"
        )
    if not path.exists():
        raise ReplayInputError(f"{name}: no such file ({path})")
    if path.is_dir():
        raise ReplayInputError(f"{name}: is a directory, not a file")
    # Only empty cells count as missing: pandas' default list would turn a description
    # reading "NA" or "null" into a gap, and the replay must pass values through as found.
    na = {"keep_default_na": False, "na_values": [""]}
    try:
        if suffix == ".csv":
            return _read_csv(path, na)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".xls":
            import xlrd  # noqa: F401  (pandas needs it for the legacy format)
        engine = (
            "openpyxl" if suffix == ".xlsx" else None
        )  # says "not a zip file", not "cannot determine"
        return pd.read_excel(path, sheet_name=0, dtype=object, engine=engine, **na)
    except ImportError as exc:
        raise ReplayInputError(
            f"{name}: reading '{suffix}' files needs {exc.name}, "
            "which is not installed; save the file as .xlsx"
        ) from None
    except Exception as exc:  # each reader fails in its own way; all mean "not a table"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReplayInputError(f"{name}: not a readable {suffix} table ({reason})") from exc


def _read_csv(path: Path, na: dict) -> pd.DataFrame:
    for encoding in CSV_ENCODINGS:
        try:
            # dtype=str: the CSV's text is what was found; numbers are parsed per cell below.
            return pd.read_csv(path, dtype=str, encoding=encoding, **na)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _resolve_columns(name: str, header: list[str]) -> list[int]:
    """Positions of FIELDS in `header`, choosing the layout by its distinctive column names."""
    found = {h.strip().casefold(): i for i, h in reversed(list(enumerate(header)))}
    # Only the names that differ between the layouts (InvoiceNo/Invoice, UnitPrice/Price,
    # CustomerID/Customer ID) say which one a file is; a file missing some of them is still
    # recognised, so the error can name what is missing rather than "unknown layout".
    shared = set.intersection(*(set(cols) for cols in LAYOUTS.values()))
    distinctive = {
        layout: sum(c.casefold() in found for c in cols if c not in shared)
        for layout, cols in LAYOUTS.items()
    }
    best = max(distinctive.values())
    winners = [layout for layout, score in distinctive.items() if score == best]
    if best == 0 or len(winners) > 1:
        shown = ", ".join(repr(h) for h in header[:12]) or "none"
        raise ReplayInputError(
            f"{name}: unknown layout (columns {shown}); expected the 'Online Retail' columns "
            f"{', '.join(LAYOUTS['Online Retail'])} or the 'Online Retail II' columns "
            f"{', '.join(LAYOUTS['Online Retail II'])}"
        )
    layout = winners[0]
    missing = [c for c in LAYOUTS[layout] if c.casefold() not in found]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        listed = ", ".join(f"'{c}'" for c in missing)
        raise ReplayInputError(
            f"{name}: missing required column{plural} {listed} (layout '{layout}')"
        )
    return [found[c.casefold()] for c in LAYOUTS[layout]]


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _text(v):
    """A cell of a text column as the text a CSV would hold, or None."""
    if type(v) is str:  # the common case first: most cells are already text
        return v
    if _missing(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (pd.Timestamp, str)):
        v = v.item()  # numpy scalar -> Python value
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
    return str(v)


def _customer(v):
    # Customer ids are whole numbers stored as floats (missing values force a float column),
    # so "17850.0" in a CSV is the same customer as 17850 in a workbook.
    text = _text(v)
    if text is not None:
        match = _FLOAT_ZERO.match(text)
        if match:
            return match.group(1)
    return text


def _number(v):
    """A Quantity or UnitPrice cell: a Python number when it is one, else its text as found."""
    if type(v) is int or (type(v) is float and not math.isnan(v)):
        return v
    if _missing(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (pd.Timestamp, str)):
        v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v
    if isinstance(v, str):
        s = v.strip()
        if "_" not in s:  # Python accepts "1_000"; a shop's file does not mean that
            for parse in (int, float):
                try:
                    n = parse(s)
                except ValueError:
                    continue
                return None if isinstance(n, float) and math.isnan(n) else n
        return v
    return _text(v)
