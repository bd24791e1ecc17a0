#!/bin/sh
# The image's entrypoint: give Dagster the instance config of the chosen profile, then run the
# command. A dagster.yaml already in DAGSTER_HOME (the Kubernetes ConfigMap `dagster-instance`)
# wins; on ECS the image's deploy/aws/dagster.yaml is copied there.
set -eu
profile="${PULSEMART_PROFILE:-local}"
if [ ! -e "$DAGSTER_HOME/dagster.yaml" ]; then
    case "$profile" in
        aws|azure) cp "/opt/pulsemart/deploy/$profile/dagster.yaml" "$DAGSTER_HOME/dagster.yaml" ;;
        *) cp /opt/pulsemart/dagster.yaml "$DAGSTER_HOME/dagster.yaml" ;;
    esac
fi
exec "$@"
