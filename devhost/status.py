"""`python -m devhost status`: the pipeline's status report locally (shared.status), plus what only
the local host can see directly: its task hub's instances, read from its state database."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost.engine import Engine
from shared.blob_access import check_storage
from shared.settings import INPUT_CONTAINER, RECONCILE_INSTANCE_ID, StorageTarget
from shared.status import reconciliation_progress, table_status, unindexed_blobs

_COLUMNS = ("instance_id, name, status, input, output, custom_status, history, created_at, updated_at")


def _task_hub(state_db: Path) -> tuple[dict[str, Any] | None, dict[str, int] | None]:
    """The singleton's status (the client API's JSON) and instance counts, or None when the host
    never ran here. Read-only: the host may be running (WAL lets readers in)."""
    if not state_db.exists():
        return None, None
    db = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)
    try:
        row = db.execute(f"SELECT {_COLUMNS} FROM instances WHERE instance_id = ?",
                         (RECONCILE_INSTANCE_ID,)).fetchone()
        counts = dict(db.execute("SELECT status, COUNT(*) FROM instances GROUP BY status ORDER BY status"))
    except sqlite3.OperationalError:
        return None, None
    finally:
        db.close()
    return (Engine._status_json(row, False, False) if row else None), counts


def build_report(sql_connection: str, storage: StorageTarget, state_db: Path, *, list_blobs: bool = True,
                 max_blobs: int = 100_000, top: int = 5, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    recon, counts = _task_hub(state_db)
    blobs: dict[str, Any] | None = None
    if list_blobs:
        problem = check_storage(storage)
        blobs = {"error": problem} if problem else unindexed_blobs(storage, sql_connection, INPUT_CONTAINER,
                                                                   max_blobs=max_blobs)
    return {
        "generatedAt": now.isoformat(timespec="seconds"),
        "container": INPUT_CONTAINER,
        "table": table_status(sql_connection, now=now, top=top),
        "blobs": blobs,
        "reconciliation": reconciliation_progress(recon),
        "orchestrations": counts,
    }
