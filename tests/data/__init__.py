"""Data the tests read, committed so that nothing skips on a clean clone (see README.md here)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent

# The real Online Retail extract: 240,007 lines, dirt included.
RETAIL_SAMPLE = HERE / "online_retail_sample.parquet"
