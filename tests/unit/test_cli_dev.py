"""`pulsemart bench` comes from the checkout's benchmarks/ folder, which the wheel leaves out."""

import sys

from click.testing import CliRunner

from pulsemart.cli import dev
from pulsemart.cli.main import cli


def test_bench_lists_the_harness_sections_from_a_checkout():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0, result.output
    for section in ("produce", "ingest", "quality", "serving", "datamart", "training", "all"):
        assert section in result.output


def test_bench_without_a_checkout_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "pulsemart_bench", None)  # not importable
    monkeypatch.setitem(sys.modules, "pulsemart_bench.cli", None)
    monkeypatch.setattr(dev, "_checkout_harness", lambda: None)
    result = CliRunner().invoke(cli, ["bench", "all", "--seed", "2"])
    assert result.exit_code == 1
    assert "needs a development checkout" in result.output
    assert "Traceback" not in result.output


def test_the_wheel_leaves_the_harness_out():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(p.startswith(("pulsemart_bench", "benchmarks")) for p in packages)
    assert not (Path(dev.__file__).resolve().parents[1] / "bench").exists()
