"""`pulsemart up` stops what it started, found by the process tree, not by command lines."""

import json
import subprocess
import sys

import pytest

# Runs in its own interpreter: a test process must not become the subreaper of pytest's other
# children (the session's broker) nor stop them.
ORPHAN = r"""
import json, os, subprocess, sys, time
import psutil
from pulsemart.local.processes import adopt_orphans, stop_descendants

assert adopt_orphans()
# A child that starts a grandchild in a session of its own and exits at once, as a Dagster
# daemon that dies leaves its run workers: the grandchild is orphaned.
spawn = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; "
         "time.sleep(120)'], start_new_session=True, stdout=subprocess.DEVNULL, "
         "stderr=subprocess.DEVNULL); print(p.pid)")
grandchild = int(subprocess.run([sys.executable, "-c", spawn], capture_output=True, text=True,
                                check=True).stdout)
time.sleep(0.3)
adopted_by = psutil.Process(grandchild).ppid()
stopped = stop_descendants(timeout_s=5)
try:
    alive = psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE
except psutil.NoSuchProcess:
    alive = False
print(json.dumps({"me": os.getpid(), "adopted_by": adopted_by, "grandchild": grandchild,
                  "stopped": stopped, "alive": alive}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux's"
)
def test_an_orphaned_grandchild_is_adopted_and_stopped():
    done = subprocess.run(
        [sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["adopted_by"] == out["me"]  # not init: it stayed in our tree
    assert out["grandchild"] in out["stopped"]
    assert not out["alive"]
