"""The bench's reading of py-spy's collapsed stacks: each sample charged to its innermost
layer."""

from pulsemart_bench.api_profile import OTHER, layer_of, summarize

SERVE = 'process 4242:"/home/u/pulsemart/.venv/bin/python -m pulsemart serve"'


def test_the_innermost_named_layer_takes_the_sample():
    stack = [
        SERVE,
        "run (asyncio/runners.py:118)",
        "app (fastapi/routing.py:300)",
        "personal_recommendations (pulsemart/serving/personal.py:144)",
        "execute (psycopg/cursor_async.py:97)",
    ]
    assert layer_of(stack).startswith("psycopg")
    assert layer_of(stack[:-1]).startswith("the blend")
    assert layer_of(stack[:-2]).startswith("FastAPI")
    # The process line names pulsemart's folder, but is no frame of pulsemart's code.
    assert layer_of([SERVE, "<module> (<frozen runpy>:88)"]) == OTHER


def test_summary_adds_the_counts_per_layer(tmp_path):
    raw = tmp_path / "profile.txt"
    raw.write_text(
        f"{SERVE};send (uvicorn/protocols/http/httptools_impl.py:500) 30\n"
        f"{SERVE};get (pulsemart/serving/cache.py:198) 10\n"
        f"{SERVE};dumps (orjson) 60\n"
        "not a sample line\n"
    )
    profile = summarize(raw)
    assert profile.samples == 100
    assert [(layer.split(":")[0], share) for layer, share in profile.shares] == [
        ("orjson", 0.6),
        ("uvicorn and httptools", 0.3),
        ("the response cache", 0.1),
    ]
