"""ML definitions: training set, recommender and propensity challengers, evaluations, gates,
batch scoring; the jobs that run them and the weekly retrain; the online experiment's readout,
its checks and its schedule."""

import dagster as dg

from orchestration.defs.ml.assets import (
    recommendations,
    recommender_challenger,
    recommender_champion,
    recommender_evaluation,
    training_dataset,
)
from orchestration.defs.ml.checks import (
    item_neighbours_checks,
    recommendations_exclude_unavailable,
)
from orchestration.defs.ml.common import GROUP, PROPENSITY_SCORES, RECOMMENDATIONS
from orchestration.defs.ml.experiments import (
    EXPERIMENT_JOB,
    EXPERIMENT_READOUT,
    experiment_readout,
    experiment_readout_schedule,
)
from orchestration.defs.ml.propensity import (
    propensity_challenger,
    propensity_champion,
    propensity_evaluation,
    propensity_scores,
)

# In-process: the steps are short, and a process per step would re-import MLflow and
# scikit-learn each time (seconds per step).
ML_TRAIN_JOB = dg.define_asset_job(
    "ml_train",
    # The experiment's readout reads the shop's exposures, not the training: its own schedule.
    selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets(EXPERIMENT_READOUT),
    executor_def=dg.in_process_executor,
    description="Retrain, evaluate and gate both models, then score both champions.",
)
ML_SCORE_JOB = dg.define_asset_job(
    "ml_score",
    selection=[RECOMMENDATIONS, PROPENSITY_SCORES],
    executor_def=dg.in_process_executor,
    description="Re-score every known customer with the current recommender and propensity champions.",
)
WEEKLY_RETRAIN = dg.ScheduleDefinition(
    name="ml_weekly_retrain",
    job=ML_TRAIN_JOB,
    cron_schedule="0 4 * * 1",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Retrain every Monday at 04:00 whatever the drift sensor says: the gate decides "
    "whether the new versions serve.",
)

defs = dg.Definitions(
    assets=[
        training_dataset,
        recommender_challenger,
        recommender_evaluation,
        recommender_champion,
        recommendations,
        propensity_challenger,
        propensity_evaluation,
        propensity_champion,
        propensity_scores,
        experiment_readout,
    ],
    asset_checks=[recommendations_exclude_unavailable, item_neighbours_checks],
    jobs=[ML_TRAIN_JOB, ML_SCORE_JOB, EXPERIMENT_JOB],
    schedules=[WEEKLY_RETRAIN, experiment_readout_schedule],
)
