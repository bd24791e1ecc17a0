"""How dbt resources appear in Dagster: keys, group, owners, tags and automation.

Models and the snapshot become `datamart/<name>` assets in the `datamart` group; sources keep
the keys their `meta.dagster.asset_key` names, so lineage runs unbroken from the Kafka topics
through ingest and quality into every model. Columns tagged `pii` in dbt make the asset carry a
`pii` tag, so the UI shows which marts hold (hashed) personal data.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from orchestration.defs.common import OWNER

GROUP = "datamart"
# The scheduled lane: at most every five minutes, and only when something upstream changed
# since the last tick (AutomationCondition.on_cron waits for updated parents).
EVERY_FIVE_MINUTES = "*/5 * * * *"


def holds_pii(resource_props: Mapping[str, Any]) -> bool:
    columns = resource_props.get("columns") or {}
    return any(
        (column.get("meta") or {}).get("pii") or "pii" in (column.get("tags") or [])
        for column in columns.values()
    )


class PulsemartDbtTranslator(DagsterDbtTranslator):
    def __init__(self):
        # Several quality tables are one Dagster asset (quality/events_clean carries its batch log).
        super().__init__(
            DagsterDbtTranslatorSettings(
                enable_asset_checks=True, enable_duplicate_source_asset_keys=True
            )
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([GROUP, dbt_resource_props["name"]])

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec
        layer_tags = {
            "layer": GROUP,
            "lane": "scheduled",
            "dbt_layer": props["fqn"][1] if props["resource_type"] == "model" else "snapshot",
        }
        if holds_pii(props):
            layer_tags["pii"] = ""
        return spec.replace_attributes(
            group_name=GROUP,
            owners=[OWNER],
            automation_condition=dg.AutomationCondition.on_cron(EVERY_FIVE_MINUTES),
        ).merge_attributes(tags=layer_tags, kinds={"postgres"})
