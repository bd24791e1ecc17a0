"""The datamart: the dbt project as Dagster assets, its docs site, and the jobs that build it.

dbt tests become asset checks on the models they test; the dbt build streams its results as
materializations and check results. The connection comes from pulsemart's settings at run
time (pulsemart.datamart.project.dbt_env), never from a file in the repository.
"""

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from orchestration.defs.common import OWNER
from orchestration.defs.datamart.translator import GROUP, PulsemartDbtTranslator
from orchestration.resources import PostgresResource, PulsemartSettings
from pulsemart.datamart.docs import docs_dir, generate_docs
from pulsemart.datamart.pii import apply_pii_key
from pulsemart.datamart.project import DBT_PROJECT_DIR, dbt_connection_env
from pulsemart.datamart.run import DbtError, dbt_executable

DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` only: re-parse so edits to the models show up. Everywhere else the
# manifest is prepared by `make install` (`pulsemart datamart parse`); import never parses.
DBT_PROJECT.prepare_if_dev()
TRANSLATOR = PulsemartDbtTranslator()


class DatamartBuildConfig(dg.Config):
    full_refresh: bool = False


@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    name="datamart_dbt",
    dagster_dbt_translator=TRANSLATOR,
    op_tags={"pulsemart/pool": "datamart"},
)
def datamart_dbt(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    postgres: PostgresResource,
    pulsemart: PulsemartSettings,
    config: DatamartBuildConfig,
):
    settings = pulsemart.get()
    with postgres.connection() as conn:  # migrated: the marts need governance.keyed_hash
        apply_pii_key(conn, settings.pii_key)
    args = ["build", *(["--full-refresh"] if config.full_refresh else [])]
    # dagster-dbt hands dbt a copy of this process's environment when the invocation starts,
    # and takes no environment of its own: the connection is in it only for that moment.
    with dbt_connection_env(settings):
        invocation = dbt.cli(args, context=context)
    yield from invocation.stream()


DBT_KEYS = list(datamart_dbt.keys)


@dg.asset(
    key=[GROUP, "docs"],
    deps=DBT_KEYS,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"dbt", "html"},
    tags={"layer": GROUP, "lane": "scheduled"},
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
    description="The dbt docs site (models, columns, tests, lineage), served by `pulsemart up` "
    "at /datamart/docs.",
)
def datamart_docs(
    context: dg.AssetExecutionContext, pulsemart: PulsemartSettings
) -> dg.MaterializeResult:
    settings = pulsemart.get()
    try:
        target = generate_docs(settings)
    except DbtError as exc:
        raise dg.Failure(str(exc)) from exc
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "files": len(list(docs_dir(settings).iterdir())),
            "served_at": "/datamart/docs/",
        }
    )


DATAMART_JOB = dg.define_asset_job(
    "datamart_build",
    selection=dg.AssetSelection.assets(*DBT_KEYS),
    description="dbt build of the datamart: incremental models add only new quality batches.",
    tags={"pulsemart/pool": "datamart"},
)
DATAMART_FULL_JOB = dg.define_asset_job(
    "datamart_full_build",
    selection=dg.AssetSelection.assets(*DBT_KEYS, datamart_docs.key),
    description="Daily full rebuild of the datamart (dbt build --full-refresh) and its docs.",
    config={"ops": {"datamart_dbt": {"config": {"full_refresh": True}}}},
    tags={"pulsemart/pool": "datamart"},
)
DAILY_FULL_BUILD = dg.ScheduleDefinition(
    name="datamart_daily_full_build",
    job=DATAMART_FULL_JOB,
    cron_schedule="30 2 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuild every mart from the clean layer once a day, so drift in incremental "
    "models cannot accumulate.",
)
AUTOMATION = dg.AutomationConditionSensorDefinition(
    "datamart_automation",
    target=dg.AssetSelection.groups(GROUP),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    run_tags={"pulsemart/pool": "datamart"},
    description="Builds the datamart on its automation conditions: every 5 minutes when the "
    "clean layer changed.",
)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=dbt_executable())
