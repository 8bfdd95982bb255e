"""A burst of uploads against a database that admits only K sessions: concurrency sized from K.

Azure SQL refuses work beyond its worker limit (error 10928; GP_S_Gen5_2 admits 150 workers);
PostgreSQL refuses sessions beyond ``max_connections`` (SQLSTATE 53300, "too many clients"), which
is the limit this machine can enforce for real. docs/capacity.md derives host.json's
``maxConcurrentActivityFunctions`` from the database's limit: concurrent database work never
exceeds (instances x activity concurrency) + a reserve. Here the local host plays one instance: its
activity worker processes are the activity concurrency (each process runs one activity at a time,
with one runtime thread, so each holds at most one session), and the reserve covers the host
process and this test's own probe connection.

With the concurrency the rule gives: every upload ends as a processed row, none failed, and the
server never had more sessions than it admits. The negative control leaves the workers no session
at all and shows the same check fails.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyodbc
import pytest

from devhost import samples
from devhost.services import Postgres
from shared.blob_access import upload_bytes
from shared.settings import INPUT_CONTAINER
from shared.store import SqlStore
from tests.hosting import ROOT, HostProcess

HOST = json.loads((ROOT / "host.json").read_text())
ACTIVITY_CONCURRENCY = HOST["extensions"]["durableTask"]["maxConcurrentActivityFunctions"]
RESERVE = 2  # the local host process (starters) and this test's probe connection
FINAL = {"processed", "rejected", "deleted"}


class Probe:
    """One session that watches the server's sessions and reads the rows."""

    def __init__(self, cs: str) -> None:
        self.conn = pyodbc.connect(cs, autocommit=True)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.lock = threading.Lock()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                [(n,)] = self.conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchall()
            self.peak = max(self.peak, n)

    def rows(self) -> dict[str, tuple[str, str]]:
        with self.lock:
            return {name: (etag, status) for name, etag, status in
                    self.conn.execute("SELECT blobname, etag, status FROM imagemetadata").fetchall()}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


def burst(tmp_path: Path, storage: str, max_connections: int, workers: int, count: int,
          timeout: float) -> tuple[dict[str, str], dict[str, tuple[str, str]], int, str]:
    """Upload ``count`` images at once through the local host; what was expected and what landed."""
    pg = Postgres.create({"max_connections": str(max_connections), "superuser_reserved_connections": "0"})
    try:
        cs = pg.create_database("images")
        schema = SqlStore(cs)
        schema.ensure_schema()
        schema.close()
        probe = Probe(cs)
        host = HostProcess(tmp_path / "state", storage, cs, {"PYTHON_THREADPOOL_THREAD_COUNT": "1"},
                           workers=workers)
        try:
            expected = {}
            for i in range(count):
                name = f"burst/{i:03d}.png"
                data = samples.encode(samples.picture((24 + i % 7, 16), seed=i), "PNG")
                expected[name] = upload_bytes(storage, INPUT_CONTAINER, name, data, "image/png").etag
            deadline = time.monotonic() + timeout
            rows: dict[str, tuple[str, str]] = {}
            while time.monotonic() < deadline:
                rows = probe.rows()
                if all(rows.get(n, ("", ""))[0] == e and rows[n][1] in FINAL for n, e in expected.items()):
                    break
                time.sleep(0.3)
        finally:
            host.stop()
            probe.close()
        return expected, rows, probe.peak, host.log.read_text()
    finally:
        pg.destroy()


@pytest.fixture
def sized(tmp_path: Path, storage: str) -> Iterator[tuple[Any, ...]]:
    max_connections = ACTIVITY_CONCURRENCY + RESERVE
    yield max_connections, *burst(tmp_path, storage, max_connections, ACTIVITY_CONCURRENCY, 60, timeout=180)


def test_burst_within_the_session_limit_loses_and_fails_nothing(sized):
    max_connections, expected, rows, peak, log = sized
    assert ACTIVITY_CONCURRENCY + RESERVE <= max_connections
    missing = sorted(n for n in expected if n not in rows)
    assert missing == [], f"{len(missing)} uploads have no row"
    assert {n: rows[n][0] for n in expected} == expected  # each row holds its upload's version
    assert {status for _, status in rows.values()} == {"processed"}  # 0 failed, every row final
    assert 0 < peak <= max_connections
    assert "too many clients" not in log


def test_a_database_without_sessions_for_the_workers_fails_the_check(tmp_path, storage):
    """Negative control: the probe takes the only session, so no activity can store its row; the
    same completion check must then fail (and the host log shows PostgreSQL's refusal)."""
    expected, rows, peak, log = burst(tmp_path, storage, 1, 2, 6, timeout=20)
    done = [n for n in expected if rows.get(n, ("", ""))[1] == "processed" and rows[n][0] == expected[n]]
    assert done == []
    assert peak <= 1
    assert "too many clients" in log
