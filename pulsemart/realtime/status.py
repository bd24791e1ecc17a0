"""Worker status: a small JSON file per worker under `<home>/run/realtime/`, and the view
`pulsemart stream --status` prints from it and from PostgreSQL.

The files tell an operator what this machine's workers own and when they last committed;
PostgreSQL's offsets (shared by every worker, anywhere) tell where each partition stands.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg

from pulsemart.config import Settings


def status_dir(settings: Settings) -> Path:
    return settings.run_dir / "realtime"


def write_status(settings: Settings, worker_id: str, status: dict) -> None:
    folder = status_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{worker_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**status, "updated_at": time.time()}, default=str))
    os.replace(tmp, path)  # a reader never sees half a file


def remove_status(settings: Settings, worker_id: str) -> None:
    (status_dir(settings) / f"{worker_id}.json").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_statuses(settings: Settings) -> list[dict]:
    """Status of the workers started from this home; a file whose process died says so."""
    statuses = []
    for path in sorted(status_dir(settings).glob("*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(int(status.get("pid", 0))):
            status["state"] = "dead (killed without stopping)"
        statuses.append(status)
    return statuses


def partition_view(conn: psycopg.Connection) -> list[tuple]:
    """(topic, partition, stored offset, decided up to, seconds since the last commit)."""
    return conn.execute("""
        select o.topic, o."partition", o.next_offset, coalesce(p.next_offset, 0),
               extract(epoch from now() - o.updated_at)
        from ingest.offsets o
        left join quality.progress p using (topic, "partition")
        order by 1, 2
    """).fetchall()


def live_partitions(conn: psycopg.Connection, topic: str, within_s: float) -> set[int]:
    """Partitions of `topic` a real-time worker committed within the last `within_s` seconds:
    a worker is keeping them, and the sensor lane leaves them alone. Only the newest batches
    are looked at (by primary key), so a sensor tick stays cheap however long the table."""
    rows = conn.execute(
        """
        select distinct "partition" from (
            select "partition", run_id, started_at from ingest.batches
            where topic = %s order by batch_id desc limit 500
        ) recent
        where run_id like 'realtime:%%' and started_at > now() - make_interval(secs => %s)
    """,
        (topic, within_s),
    ).fetchall()
    return {row[0] for row in rows}


def latest_session(conn) -> tuple[str, str | None] | None:
    """The session touched last (by event time) and its customer: one to try the session-aware
    recommendations with."""
    row = conn.execute(
        "select t.owner_id, f.customer_id from serving.recent_touches t "
        "left join serving.session_funnel f on f.session_id = t.owner_id "
        "where t.scope = 'session' order by t.last_event_time desc limit 1"
    ).fetchone()
    return None if row is None else (row[0], row[1])


def render(
    statuses: list[dict],
    partitions: list[tuple],
    ends: dict[tuple[str, int], int],
    session: tuple[str, str | None] | None = None,
) -> str:
    lines = []
    if not statuses:
        lines.append("no real-time worker started from this PULSEMART_HOME")
    for s in statuses:
        owned = ", ".join(s.get("partitions", [])) or "none"
        last = s.get("last_commit_at")
        ago = f"{time.time() - last:.1f}s ago" if last else "never"
        lines.append(
            f"worker {s['worker_id']} (pid {s['pid']}): {s['state']}; partitions {owned}; "
            f"lag {s.get('lag', '?')}; last commit {ago}; batches {s.get('batches', 0)}, "
            f"records {s.get('records', 0)}"
        )
    lines.append("partition            stored   decided   end*    lag  last commit")
    for topic, partition, stored, decided, age in partitions:
        end = ends.get((topic, partition))
        lag = "?" if end is None else max(0, end - stored)
        lines.append(
            f"{topic}[{partition}]".ljust(18) + f"{stored:>9} {decided:>9} "
            f"{'?' if end is None else end:>6} {lag:>6}  {float(age):.1f}s ago"
        )
    lines.append("* end offsets from the broker (a lower bound on the embedded broker)")
    if session is not None:
        session_id, customer_id = session
        lines.append(
            f"latest session: {session_id} (customer {customer_id or 'none'}): "
            f"GET /customers/{customer_id}/recommendations?session_id={session_id}"
            if customer_id
            else f"latest session: {session_id}: GET /sessions/{session_id}/recommendations"
        )
    return "\n".join(lines)
