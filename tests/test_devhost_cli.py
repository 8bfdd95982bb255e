"""The commands a user runs: upload, show, run, and the errors they meet."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devhost import samples
from devhost.services import Azurite, ServiceError, free_port, listening, port_free
from shared.blob_access import list_blob_refs
from shared.models import BlobRef, ImageMetadata, ImageRecord
from shared.store import SqlStore

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devhost", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_upload_sends_files_and_folders_with_progress(azurite, tmp_path):
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(samples.encode(samples.picture((5, 5)), "PNG"))
    (folder / "sub" / "b 'q'.jpg").write_bytes(samples.encode(samples.picture((5, 5)), "JPEG"))
    single = tmp_path / "single.gif"
    single.write_bytes(samples.animated_gif(2))
    result = cli("upload", str(folder), str(single), env={"AzureWebJobsStorage": azurite.connection_string})
    assert result.returncode == 0, result.stderr
    assert "uploaded 3/3" in result.stdout
    names = {r.name for r in list_blob_refs(azurite.connection_string, "images-input")}
    assert {"a.png", "sub/b 'q'.jpg", "single.gif"} <= names


def test_upload_with_storage_down_says_start_azurite():
    port = free_port()
    result = cli("--azurite-port", str(port), "upload", str(ROOT / "README.md"),
                 env={"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert result.returncode == 2
    assert "cannot reach blob storage" in result.stderr and "Azurite" in result.stderr


def test_show_prints_table_json_and_csv(sqlite_cs):
    store = SqlStore(sqlite_cs)
    ref = BlobRef("images-input", "x/ünï 'q'.jpg", "0x1", size=2048, last_modified="2026-01-01T00:00:00+00:00")
    store.upsert(ImageRecord.for_blob(ref, "processed", metadata=ImageMetadata(width=4, height=3, format="JPEG")))
    env = {"SqlConnectionString": sqlite_cs}
    table = cli("show", env=env)
    assert table.returncode == 0 and "x/ünï 'q'.jpg" in table.stdout and "(1 row)" in table.stdout
    rows = json.loads(cli("show", "--format", "json", env=env).stdout)
    assert rows[0]["BlobName"] == "x/ünï 'q'.jpg" and rows[0]["Width"] == 4
    parsed = list(csv.DictReader(io.StringIO(cli("show", "--format", "csv", env=env).stdout)))
    assert parsed[0]["FileSizeKB"] in ("2.0", "2.00", "2")


def test_show_duplicates_lists_exact_and_near_groups(sqlite_cs):
    from devhost import scenes
    from shared.image_hashes import perceptual_hash
    from shared.models import ImagePreview

    store = SqlStore(sqlite_cs)
    photo, other = scenes.scene((320, 240), seed=1), scenes.scene((320, 240), seed=2)
    same = ImagePreview(content_md5="a" * 32, perceptual_hash=perceptual_hash(photo))
    for name, preview in {"a.jpg": same, "copy of a.jpg": same,
                          "a small.jpg": ImagePreview(content_md5="b" * 32,
                                                      perceptual_hash=perceptual_hash(photo.resize((160, 120)))),
                          "other.jpg": ImagePreview(content_md5="c" * 32, perceptual_hash=perceptual_hash(other))}.items():
        ref = BlobRef("images-input", name, "0x1", size=1, last_modified="2026-01-01T00:00:00+00:00")
        store.upsert(ImageRecord.for_blob(ref, "processed", preview=preview))
    env = {"SqlConnectionString": sqlite_cs}
    rows = json.loads(cli("show", "--duplicates", "--format", "json", env=env).stdout)
    groups: dict[tuple[int, str], set[str]] = {}
    for row in rows:
        groups.setdefault((row["Group"], row["Match"]), set()).add(row["BlobName"])
    assert sorted(groups.values(), key=len) == [{"a.jpg", "copy of a.jpg"}, {"a.jpg", "copy of a.jpg", "a small.jpg"}]
    assert [m for _, m in sorted(groups)] == ["exact", "near"]
    table = cli("show", "--duplicates", env=env)
    assert table.returncode == 0 and "Match" in table.stdout and "other.jpg" not in table.stdout


def test_show_with_missing_driver_names_the_fix():
    result = cli("show", env={"SqlConnectionString": "Driver={ODBC Driver 18 for SQL Server};Server=x;"})
    assert result.returncode == 2 and "apt-get install" in result.stderr


def test_azurite_on_a_taken_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ServiceError, match="already taken"):
            Azurite.start(port=s.getsockname()[1])


def test_host_on_a_taken_client_port_is_a_clear_error(azurite, sqlite_cs, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        result = cli("host", "--state", str(tmp_path / "st"), "--port", str(s.getsockname()[1]),
                     env={"AzureWebJobsStorage": azurite.connection_string, "SqlConnectionString": sqlite_cs})
    assert result.returncode == 2 and "cannot listen on 127.0.0.1" in result.stderr


def test_run_stops_azurite_and_host_cleanly_on_sigterm(tmp_path, sqlite_cs):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "devhost", "--azurite-port", str(port), "run"], cwd=ROOT,
                            env={**os.environ, "DEVHOST_LOCAL": str(tmp_path / "local"),
                                 "SqlConnectionString": sqlite_cs},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "watching 'images-input'" in line, proc.stderr.read() if proc.poll() is not None else line
    assert not port_free(port)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped Azurite and the host" in out
    assert not listening(port)


def _start_run(port: int, local: Path, sqlite_cs: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "devhost", "--azurite-port", str(port), "run"], cwd=ROOT,
                            env={**os.environ, "DEVHOST_LOCAL": str(local), "SqlConnectionString": sqlite_cs},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "watching 'images-input'" in line, proc.stderr.read() if proc.poll() is not None else line
    return proc


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower():
            return True
        time.sleep(0.1)
    return False


def _port_outside_ephemeral_range() -> int:
    """A free port below the kernel's ephemeral range: between the runs nothing else can be
    handed it (every free_port() and outgoing connection of the suite draws from that range),
    so a listener found there after a kill can only be the run's own Azurite."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(20000, min(low, 32768)), 500):
        if port_free(port) and port_free(port + 1) and port_free(port + 2):
            return port
    raise AssertionError("no free port below the ephemeral range")


def _listener(port: int) -> str:
    return subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout.strip()


def test_run_starts_again_after_being_killed_with_sigkill(tmp_path, sqlite_cs):
    """The Azurite a run started dies with it (kill -9, OOM, closed terminal), so the next run starts."""
    port, local = _port_outside_ephemeral_range(), tmp_path / "local"
    for _ in range(3):
        proc = _start_run(port, local, sqlite_cs)
        azurite_pid = json.loads((local / "azurite" / "azurite.pid").read_text())["pid"]
        proc.kill()
        proc.wait(10)
        assert _gone(azurite_pid), "Azurite outlived the run that started it"
        # (its connections' sockets may take a moment to close: start waits for that)
        assert not listening(port), f"port {port} still has a listener: {_listener(port)}"
    proc = _start_run(port, local, sqlite_cs)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def test_a_leftover_azurite_of_ours_is_replaced_not_refused(tmp_path, sqlite_cs):
    """An Azurite an earlier run left behind (started without the die-with-parent guard) is recognised
    by its pidfile and command line, stopped and replaced; the new run then serves normally."""
    port, local = free_port(), tmp_path / "local"
    location = (local / "azurite").resolve()
    location.mkdir(parents=True)
    binary = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    old = subprocess.Popen([str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
                            str(location), "--skipApiVersionCheck", "--disableTelemetry", "--loose"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (location / "azurite.pid").write_text(json.dumps({"pid": old.pid, "port": port}))
        deadline = time.monotonic() + 30
        while port_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc = _start_run(port, local, sqlite_cs)
        assert old.wait(20) is not None  # the leftover was stopped
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if old.poll() is None:
            old.kill()


def test_all_three_azurite_services_for_func_start(tmp_path):
    """`func start` needs queues and tables too (the Durable extension's state): `make azurite` starts all."""
    port = free_port()
    while not all(port_free(p) for p in (port + 1, port + 2)):
        port = free_port()
    azurite = Azurite.start(port=port, location=tmp_path / "az", all_services=True)
    try:
        for service_port in (port, port + 1, port + 2):
            with socket.create_connection(("127.0.0.1", service_port), timeout=2):
                pass
    finally:
        azurite.stop()
    assert all(port_free(p) for p in (port, port + 1, port + 2))
