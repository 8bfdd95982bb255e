"""Helpers for end-to-end tests: the local host as a separate process, and waiting for rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shared.store import SqlStore

ROOT = Path(__file__).resolve().parent.parent


class HostProcess:
    """`python -m devhost host` in its own process, so a test can SIGKILL it."""

    def __init__(self, state: Path, storage: str, sql: str, extra_env: dict[str, str] | None = None,
                 poll_interval: float = 0.2, workers: int = 2) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DEVHOST_KILL_AT"}
        # Reconciliation runs only where a test asks for it (its timer would fire at random moments).
        env["AzureWebJobs.ReconcileBlobs.Disabled"] = "true"
        env.update({"AzureWebJobsStorage": storage, "SqlConnectionString": sql,
                    "RetryDelaysSeconds": "0.5,1,1,2,2,3,3,5", "DEVHOST_LOG": "WARNING", **(extra_env or {})})
        self.log = state.parent / f"{state.name}-host.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devhost", "host", "--state", str(state), "--poll-interval", str(poll_interval),
             "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(self.log, "ab"), text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "host ready on port" not in line:
            raise RuntimeError(f"host did not start: {line!r}; log: {self.log.read_text()[-2000:]}")
        self.port = int(line.rsplit(" ", 1)[1])

    def wait_exit(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def wait_for_rows(sql: str, expected: dict[str, str], timeout: float = 90) -> list[dict[str, Any]]:
    """Wait until every blob name in ``expected`` has a row for the given ETag; return all rows."""
    store = SqlStore(sql)
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            rows = store.rows()
        except Exception:  # noqa: BLE001 - the database may be down on purpose
            store.close()
            time.sleep(0.3)
            continue
        got = {r["BlobName"]: r["ETag"] for r in rows}
        if all(got.get(name) == etag for name, etag in expected.items()):
            return rows
        time.sleep(0.2)
    missing = {n: e for n, e in expected.items() if {r["BlobName"]: r["ETag"] for r in rows}.get(n) != e}
    raise AssertionError(f"no row within {timeout} s for {sorted(missing)[:10]} ({len(missing)} missing)")
