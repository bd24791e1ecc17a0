# The pulsemart image: one image for both Dagster code locations, webserver, daemon and the run
# tasks (ECS) or pods (Kubernetes) they launch, and the serving API. See docs/deploy.md.
#
#   docker build -t pulsemart .
#   docker run -e PULSEMART_PROFILE=aws ... pulsemart                  # streaming location, :4000
#   docker run ... pulsemart dagster code-server start -h 0.0.0.0 -p 4001 -m orchestration.analytics
#   docker run ... pulsemart dagster-webserver -h 0.0.0.0 -p 3000 -w deploy/workspace.yaml
#   docker run ... pulsemart dagster-daemon run -w deploy/workspace.yaml
#   docker run ... pulsemart pulsemart serve --host 0.0.0.0 --port 8000
#
# Settings and secrets come from the environment at run time (task definition secrets from
# AWS Secrets Manager; Kubernetes Secrets from Key Vault); nothing secret is built in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PULSEMART_HOME=/var/lib/pulsemart \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/pulsemart

# The project as `make install` sees it (tests, benchmarks and docs stay out of the image).
COPY pyproject.toml README.md workspace.yaml dagster.yaml ./
COPY pulsemart ./pulsemart
COPY orchestration ./orchestration
COPY sensors ./sensors
COPY ml ./ml
COPY dbt_project ./dbt_project
COPY deploy ./deploy

# Editable: the dbt project is found beside the sources (pulsemart/datamart/project.py). The
# dbt manifest is parsed here, once: nothing parses dbt when the code location loads.
RUN pip install -e . \
 && pulsemart datamart parse \
 && useradd --system --uid 10001 --home-dir /var/lib/pulsemart --create-home pulsemart \
 && mkdir -p "$DAGSTER_HOME" \
 && chown -R pulsemart /opt/dagster /opt/pulsemart/dbt_project

USER pulsemart
EXPOSE 3000 4000 4001 8000

# Puts deploy/<profile>/dagster.yaml in DAGSTER_HOME unless one is mounted there.
ENTRYPOINT ["sh", "/opt/pulsemart/deploy/entrypoint.sh"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "orchestration.streaming"]
