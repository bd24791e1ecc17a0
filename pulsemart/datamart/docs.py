"""The dbt docs site: generated into the project's target folder, published under the home.

`pulsemart up` serves the published copy at /datamart/docs/ on the API port, so the site does
not change under a reader while dbt regenerates it.

dbt's index.html is one page with its scripts and styles inline; it fetches its manifest and
catalog beside it, and nothing else unless the manifest says `send_anonymous_usage_stats`: then
it loads dbt Labs' usage tracker from a CDN. The project turns usage stats off (dbt_project.yml
and `dbt_env`), and the published page also carries a content security policy that keeps it on
its own origin whatever the manifest says, so it renders offline and reports to no one.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pulsemart.config import Settings
from pulsemart.datamart.project import DBT_PROJECT_DIR
from pulsemart.datamart.run import run_dbt

DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
# Inline scripts and styles are the page itself (and AngularJS compiles its templates); every
# fetch, image and font must come from the API that serves it.
SITE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def docs_dir(settings: Settings) -> Path:
    return settings.home / "dbt_docs"


def confined_to_origin(page: str) -> str:
    """`page` with SITE_POLICY as the first element of its head."""
    head = _HEAD.search(page)
    if head is None:
        raise ValueError("dbt's index.html has no <head>: cannot add its content security policy")
    policy = f'<meta http-equiv="Content-Security-Policy" content="{SITE_POLICY}">'
    return page[: head.end()] + policy + page[head.end() :]


def publish_site(generated: Path, target: Path) -> Path:
    """Replace the site in `target` by the one dbt generated in `generated`, whole; return the
    published index.html."""
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in DOCS_FILES:
        shutil.copy2(generated / name, staging / name)
    index = staging / "index.html"
    index.write_text(confined_to_origin(index.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target / "index.html"


def generate_docs(settings: Settings) -> Path:
    """Run `dbt docs generate` and publish the site; return the published index.html.
    Raises DbtError (with dbt's output) when dbt fails."""
    run_dbt(settings, ["docs", "generate"], capture=True)
    return publish_site(DBT_PROJECT_DIR / "target", docs_dir(settings))
