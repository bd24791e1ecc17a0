"""Online experiments against the real database and API: arms by stable hash, the popularity
challenger, shadow answers that are logged and never shown, refusals, and the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ml.names import RECOMMENDER
from pulsemart.cli.main import cli
from pulsemart.ml_store import experiments
from pulsemart.ml_store.experiments import POPULARITY, ExperimentError, bucket
from pulsemart.serving.api import create_app
from pulsemart.serving.cache import ResponseCache
from pulsemart.serving.personal import personal_recommendations

pytestmark = pytest.mark.integration
KEY = "test-key-experiments"
CHAMPION, CHALLENGER = "exp-champion", "exp-challenger"
CUSTOMERS = [f"EXP{n:04d}" for n in range(240)]


def _score(db, version: str, products: list[str]) -> None:
    """Scores for every test customer and one neighbour row: a version `has_scores`."""
    with db.cursor() as cur:
        cur.executemany(
            "insert into serving.recommendations (model_name, model_version, customer_key, "
            "product_id, rank, score) values (%s, %s, governance.keyed_hash(%s), %s, %s, %s)",
            [
                (RECOMMENDER, version, customer, product, rank, 1.0 / rank)
                for customer in CUSTOMERS
                for rank, product in enumerate(products, start=1)
            ],
        )
        cur.execute(
            "insert into serving.item_neighbours (model_name, model_version, product_id, rank, "
            "neighbour_id, score) values (%s, %s, %s, 1, %s, 0.5)",
            (RECOMMENDER, version, products[0], products[1]),
        )


def _end_running(db) -> None:
    if experiments.running(db, RECOMMENDER) is not None:
        experiments.end(db, RECOMMENDER, "stopped", "test", "cleanup")
    db.commit()


@pytest.fixture
def scored(fresh_stream, db):
    _end_running(db)
    for table in ("recommendations", "item_neighbours"):
        db.execute(
            f"delete from serving.{table} where model_version = any(%s)",  # noqa: S608 - constant
            ([CHAMPION, CHALLENGER],),
        )
    _score(db, CHAMPION, ["A1", "A2", "A3"])
    _score(db, CHALLENGER, ["B1", "B2", "B3"])
    db.execute(
        "insert into serving.model_deployments (model_name, model_version, deployed_by) "
        "values (%s, %s, 'test') on conflict (model_name) do update set "
        "model_version = excluded.model_version",
        (RECOMMENDER, CHAMPION),
    )
    db.commit()
    yield fresh_stream
    _end_running(db)
    db.execute("delete from serving.model_deployments where model_version = %s", (CHAMPION,))
    db.commit()


@pytest.fixture
def client(scored):
    # The cache off: each request reads the experiment tables as they are now.
    settings = scored.model_copy(update={"api_key": SecretStr(KEY), "exposures": False})
    app = create_app(settings, cache=ResponseCache(max_staleness_s=0))
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        yield client


def _ask(client, customer: str) -> dict:
    response = client.get(f"/customers/{customer}/recommendations", params={"k": 3})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_split_serves_each_shopper_one_stable_arm_by_the_hash(client, db):
    started = experiments.start(db, RECOMMENDER, [(CHALLENGER, 0.5)], "test")
    arms = {}
    for customer in CUSTOMERS:
        body = _ask(client, customer)
        expected = "challenger" if bucket(started.experiment_id, customer) < 0.5 else "champion"
        assert body["variant"] == expected, customer
        assert body["experiment_id"] == started.experiment_id
        version = CHALLENGER if expected == "challenger" else CHAMPION
        assert body["model_version"] == version
        assert [i["product_id"] for i in body["items"]] == (
            ["B1", "B2", "B3"] if version == CHALLENGER else ["A1", "A2", "A3"]
        )
        arms[customer] = body["variant"]
    in_sql = db.execute(
        "select array_agg(serving.experiment_bucket(%s, u) order by n) "
        "from unnest(%s::text[]) with ordinality as t(u, n)",
        (started.experiment_id, CUSTOMERS),
    ).fetchone()[0]
    assert in_sql == [bucket(started.experiment_id, c) for c in CUSTOMERS]
    db.rollback()  # end() below is then a transaction of its own, not a savepoint in this one
    counts = {arm: list(arms.values()).count(arm) for arm in ("champion", "challenger")}
    assert min(counts.values()) > 80, counts  # 240 shoppers, 50/50
    again = {c: _ask(client, c)["variant"] for c in CUSTOMERS[:40]}
    assert again == {c: arms[c] for c in CUSTOMERS[:40]}
    # An anonymous shopper's arm follows the session.
    session = client.get("/sessions/S-exp-1/recommendations").json()
    in_challenger = bucket(started.experiment_id, "S-exp-1") < 0.5
    assert session["variant"] == ("challenger" if in_challenger else "champion")

    experiments.end(db, RECOMMENDER, "stopped", "test", "done")
    assert {_ask(client, c)["variant"] for c in CUSTOMERS[:40]} == {"champion"}
    assert _ask(client, CUSTOMERS[0])["experiment_id"] is None
    actions = [
        r[0]
        for r in db.execute(
            "select action from governance.audit_log where details->>'experiment_id' = %s "
            "order by audit_id",
            (str(started.experiment_id),),
        )
    ]
    assert actions == ["ml.experiment.start", "ml.experiment.stop"]


def test_the_popularity_challenger_serves_no_model_scores(client, db):
    experiments.start(db, RECOMMENDER, [(POPULARITY, 1.0)], "test")
    body = _ask(client, CUSTOMERS[0])
    assert (body["variant"], body["model_version"]) == ("challenger", POPULARITY)
    assert body["source"] == "trending"  # the same list for everyone, never re-ranked
    assert not {"A1", "B1"} & {i["product_id"] for i in body["items"]}


async def _answer(settings, conninfo: str, customer: str) -> dict:
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        return await personal_recommendations(conn, customer, None, 3, settings.blend_weights)


def test_a_shadow_is_blended_for_the_log_and_never_shown(client, db, scored):
    import asyncio

    experiments.start(db, RECOMMENDER, [(CHALLENGER, 1.0)], "test", shadow=True)
    response = client.get(f"/customers/{CUSTOMERS[0]}/recommendations", params={"k": 3})
    body = response.json()
    assert "shadow" not in body and b"B1" not in response.content
    assert (body["variant"], body["model_version"]) == ("champion", CHAMPION)
    assert response.headers["X-Cache"] == "bypass"  # an answer with a shadow is never kept
    answer = asyncio.run(_answer(scored, db.info.dsn, CUSTOMERS[0]))
    assert answer["shadow"]["model_version"] == CHALLENGER
    assert [i["product_id"] for i in answer["shadow"]["items"]] == ["B1", "B2", "B3"]
    assert [i["position"] for i in answer["shadow"]["items"]] == [1, 2, 3]


def test_starts_that_cannot_be_are_refused_with_the_reason(scored, db):
    with pytest.raises(ExperimentError, match="has no scores"):
        experiments.start(db, RECOMMENDER, [("never-scored", 0.1)], "test")
    with pytest.raises(ExperimentError, match="is the champion"):
        experiments.start(db, RECOMMENDER, [(CHAMPION, 0.1)], "test")
    experiments.start(db, RECOMMENDER, [(CHALLENGER, 0.1)], "test")
    with pytest.raises(ExperimentError, match="already running"):
        experiments.start(db, RECOMMENDER, [(POPULARITY, 0.1)], "test")
    # The database refuses it too, whoever writes.
    import psycopg

    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "insert into serving.experiments (model_name, started_by) values (%s, 'sql')",
            (RECOMMENDER,),
        )
    db.rollback()


def test_the_cli_starts_reports_and_stops_an_experiment(scored, db, monkeypatch):
    monkeypatch.setenv("PULSEMART_HOME", str(scored.home))
    runner = CliRunner()
    base = ["model", "experiment"]
    refused = runner.invoke(
        cli, [*base, "start", RECOMMENDER, "--challenger", CHALLENGER, "--share", "1.5"]
    )
    assert refused.exit_code != 0 and "outside (0, 1]" in refused.output
    refused = runner.invoke(
        cli,
        [*base, "start", RECOMMENDER, "--challenger", CHALLENGER, "--share", "0.6"]
        + ["--challenger", POPULARITY, "--share", "0.5"],
    )
    assert refused.exit_code != 0 and "above 1" in refused.output
    started = runner.invoke(
        cli, [*base, "start", RECOMMENDER, "--challenger", CHALLENGER, "--share", "0.25"]
    )
    assert started.exit_code == 0, started.output
    again = runner.invoke(cli, [*base, "start", RECOMMENDER, "--challenger", POPULARITY])
    assert again.exit_code != 0 and "already running" in again.output
    shown = runner.invoke(cli, [*base, "status", RECOMMENDER, "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["experiment"]["status"] == "running"
    assert document["experiment"]["shares"] == {"champion": 0.75, "challenger": 0.25}
    # Promotion needs online evidence: without a readout showing a significant gain, refused.
    gated = runner.invoke(cli, [*base, "conclude", RECOMMENDER, "promote"])
    assert gated.exit_code != 0 and "online gate: too few exposures" in gated.output, gated.output
    assert experiments.running(db, RECOMMENDER) is not None
    db.rollback()
    (gate,) = db.execute(
        "select details from governance.audit_log where action = 'ml.experiment.gate' "
        "order by audit_id desc limit 1"
    ).fetchone()
    db.rollback()
    assert gate["passed"] is False and "too few exposures" in gate["reason"]
    stopped = runner.invoke(cli, [*base, "stop", RECOMMENDER, "--reason", "enough"])
    assert stopped.exit_code == 0, stopped.output
    assert experiments.latest(db, RECOMMENDER).end_reason == "enough"
    nothing = runner.invoke(cli, [*base, "stop", RECOMMENDER])
    assert nothing.exit_code != 0 and "no experiment is running" in nothing.output
    runner.invoke(cli, [*base, "start", RECOMMENDER, "--challenger", POPULARITY])
    baseline = runner.invoke(cli, [*base, "conclude", RECOMMENDER, "promote"])
    assert baseline.exit_code != 0 and "conclude with discard" in baseline.output
    discarded = runner.invoke(cli, [*base, "conclude", RECOMMENDER, "discard"])
    assert discarded.exit_code == 0, discarded.output
    assert experiments.latest(db, RECOMMENDER).status == "discarded"
