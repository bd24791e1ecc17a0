"""The dbt docs site: generated into the project's target folder, published under the home.

`pulsemart up` serves the published copy at /datamart/docs/ on the API port, so the site does
not change under a reader while dbt regenerates it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pulsemart.config import Settings
from pulsemart.datamart.project import DBT_PROJECT_DIR
from pulsemart.datamart.run import run_dbt

DOCS_FILES = ("index.html", "manifest.json", "catalog.json")


def docs_dir(settings: Settings) -> Path:
    return settings.home / "dbt_docs"


def generate_docs(settings: Settings) -> Path:
    """Run `dbt docs generate` and publish the site; return the published index.html.
    Raises DbtError (with dbt's output) when dbt fails."""
    run_dbt(settings, ["docs", "generate"], capture=True)
    target = docs_dir(settings)
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in DOCS_FILES:
        shutil.copy2(DBT_PROJECT_DIR / "target" / name, staging / name)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target / "index.html"
