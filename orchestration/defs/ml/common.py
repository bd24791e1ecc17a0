"""What the ML assets share: keys, the asset decorator with the platform's conventions, the
gate's configuration, and the champion step's output."""

import dagster as dg
from pydantic import Field

from orchestration.defs.common import OWNER
from orchestration.defs.ml.reports import gate_summary, model_card
from pulsemart import ml_store
from pulsemart.config import Settings
from pulsemart.ml_store.lifecycle import GateOutcome

GROUP = "ml"
TAGS = {"layer": "ml", "lane": "batch"}
DATASET = dg.AssetKey([GROUP, "training_dataset"])
CHALLENGER = dg.AssetKey([GROUP, "recommender_challenger"])
EVALUATION = dg.AssetKey([GROUP, "recommender_evaluation"])
CHAMPION = dg.AssetKey([GROUP, "recommender_champion"])
RECOMMENDATIONS = dg.AssetKey([GROUP, "recommendations"])
PROPENSITY_SCORES = dg.AssetKey([GROUP, "propensity_scores"])


class GateConfig(dg.Config):
    margin: float = Field(
        0.0,
        ge=0,
        description=(
            "How much the challenger must beat the champion by on the gate's metric to be promoted."
        ),
    )


def ml_asset(name: str, kinds: set[str], description: str, **kwargs):
    """@dg.asset with the ML layer's key prefix, group, owner and tags."""
    return dg.asset(
        key=[GROUP, name],
        group_name=GROUP,
        owners=[OWNER],
        kinds=kinds,
        tags=TAGS,
        description=description,
        **kwargs,
    )


def configure_mlflow(settings: Settings) -> None:
    # MLflow keeps its store in process-wide state; pointing it again per step is cheap and
    # keeps a step right when it runs alone (a re-execution, a subset).
    ml_store.configure_mlflow(settings)


def meta(values: dict) -> dict:
    """Metadata without empty entries (Dagster shows None as a blank)."""
    return {key: value for key, value in values.items() if value is not None}


def champion_output(
    model_name: str, outcome: GateOutcome, evaluation: dict, columns: list[str]
) -> dg.Output:
    """The champion step's value (who is champion now) and its metadata: gate and model card."""
    results = evaluation["results"]
    summary = gate_summary(
        outcome.decision.passed, outcome.decision.reason, outcome.metric, outcome.margin, results
    )
    card = model_card(
        model_name,
        outcome.challenger,
        evaluation.get("params", {}),
        evaluation["window"],
        results,
        outcome.metric,
        columns,
        outcome.decision.passed,
        outcome.decision.reason,
        outcome.champion_after,
    )
    return dg.Output(
        {"champion": outcome.champion_after, "promoted": outcome.promoted},
        metadata=meta(
            {
                **summary,
                "challenger": outcome.challenger,
                "champion_before": outcome.champion_before,
                "champion": outcome.champion_after,
                "model_card": dg.MetadataValue.md(card),
            }
        ),
    )
