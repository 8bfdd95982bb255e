"""Starting and stopping the real local services: Azurite and (for tests) PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devhost.functions import APP_ROOT

AZURITE_VERSION = "3.35.0"
PIDFILE = "azurite.pid"
# Azurite's published development account key: public, identical on every machine.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class ServiceError(Exception):
    """A local service could not start; the message says what to do."""


def azurite_binary() -> Path:
    path = APP_ROOT / ".tools" / "node_modules" / ".bin" / "azurite"
    if not path.exists():
        raise ServiceError(
            f"Azurite is not installed in {path.parent}. Run 'make setup' (needs Node.js 20 and npm: "
            "'sudo apt-get install nodejs npm'), which installs azurite@" + AZURITE_VERSION + " there."
        )
    if shutil.which("node") is None:
        raise ServiceError("Node.js is not installed; Azurite needs it: 'sudo apt-get install nodejs'.")
    return path


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server accepts connections on the port (as opposed to sockets still closing)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex((host, port)) != 0:
            return False
        # A port in the ephemeral range can "answer" by TCP self-connect (the kernel picked the
        # same port as the source): that is no server.
        return s.getsockname() != s.getpeername()


def wait_port_released(ports: list[int], timeout: float = 60) -> bool:
    """After a server dies its connections' sockets take a moment to close, and until then the
    port cannot be bound again although nothing listens on it. Wait for that (True when free)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(port_free(p) for p in ports):
            return True
        if any(listening(p) for p in ports):
            return False
        time.sleep(0.2)
    return all(port_free(p) for p in ports)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def storage_connection_string(blob_port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob_port}/{DEV_ACCOUNT};")


def _dying_with_us(args: list[str]) -> list[str]:
    """Run ``args`` so it gets SIGTERM when the process that started it dies, however it dies
    (kill -9, OOM, a closed terminal): util-linux ``setpriv --pdeathsig`` sets PR_SET_PDEATHSIG and
    execs it. SIGTERM lets Azurite save. Without setpriv, the pidfile check below still recovers."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *args] if setpriv else args


def _process_cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


@dataclass
class Azurite:
    """A running Azurite that this project started and owns.

    It dies with the process that started it, and it leaves ``azurite.pid`` in its folder, so a
    start that finds the port taken by our own leftover (from before this safeguard, or a platform
    without it) replaces it instead of refusing; anything else on the port is reported.
    """

    process: subprocess.Popen
    port: int
    location: Path
    https: bool = False

    @property
    def connection_string(self) -> str:
        if self.https:
            return storage_connection_string(self.port).replace("http", "https")
        return storage_connection_string(self.port)

    @property
    def blob_service_uri(self) -> str:
        """The account's blob endpoint (what AzureWebJobsStorage__blobServiceUri names)."""
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    @staticmethod
    def _leftover(location: Path, port: int) -> int | None:
        """The pid of an Azurite of ours still serving ``port`` from ``location``, if there is one."""
        try:
            record = json.loads((location / PIDFILE).read_text())
        except (OSError, ValueError):
            return None
        pid = int(record.get("pid", 0))
        cmdline = _process_cmdline(pid) if pid > 0 else []
        ours = any("azurite" in Path(part).name for part in cmdline)
        if record.get("port") == port and ours and str(location) in cmdline:
            return pid
        return None

    @staticmethod
    def _stop_pid(pid: int, timeout: float = 15) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _process_cmdline(pid):
            time.sleep(0.1)
        if _process_cmdline(pid):
            os.kill(pid, signal.SIGKILL)

    @classmethod
    def start(cls, port: int = 10000, location: Path | None = None, log: Path | None = None,
              all_services: bool = False, cert: Path | None = None, key: Path | None = None,
              oauth: bool = False, debug: Path | None = None) -> Azurite:
        """Blob only (what the local host needs), or blob + queue + table on port, port+1, port+2
        (what `func start` needs: the Durable extension keeps its state in queues and tables).
        With ``cert``/``key`` (PEM) it serves HTTPS, and ``oauth`` adds Azurite's ``--oauth basic``
        bearer-token checks (which need HTTPS). ``debug`` is Azurite's request log (every request's
        method, URL and headers; benchmarks count the app's storage requests from it)."""
        if oauth and not (cert and key):
            raise ServiceError("Azurite's OAuth mode needs HTTPS: pass cert and key (PEM files).")
        tls = ["--cert", str(cert), "--key", str(key)] if cert and key else []
        binary = azurite_binary()
        if not all_services:
            binary = binary.with_name("azurite-blob")
        location = (location or Path(tempfile.mkdtemp(prefix="azurite-"))).resolve()
        location.mkdir(parents=True, exist_ok=True)
        ports = [port, port + 1, port + 2] if all_services else [port]
        if not all(port_free(p) for p in ports):
            leftover = cls._leftover(location, port)
            if leftover is None and not wait_port_released(ports):
                raise ServiceError(
                    f"port {'/'.join(map(str, ports))} is already taken by a process this project did not "
                    f"start (another Azurite?). Stop it, or choose another port with AZURITE_PORT=<port>."
                )
            if leftover is not None:
                logging.getLogger("devhost").warning(
                    "replacing the Azurite (pid %d) an earlier run left on port %d", leftover, port)
                cls._stop_pid(leftover)
                wait_port_released(ports)
        out = open(log, "ab") if log else subprocess.DEVNULL
        args = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
        if all_services:
            args += ["--queueHost", "127.0.0.1", "--queuePort", str(port + 1),
                     "--tableHost", "127.0.0.1", "--tablePort", str(port + 2)]
        args += ["--location", str(location), "--skipApiVersionCheck", "--disableTelemetry", "--loose", *tls,
                 *(["--oauth", "basic"] if oauth else []), *(["--debug", str(debug)] if debug else [])]
        proc = subprocess.Popen(_dying_with_us(args), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        (location / PIDFILE).write_text(json.dumps({"pid": proc.pid, "port": port}))
        try:
            for p in ports:
                wait_for_port(p, 30, proc)
        except ServiceError as exc:
            proc.kill()
            raise ServiceError(f"Azurite did not start: {exc}") from None
        return cls(proc, port, location, https=bool(tls))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        (self.location / PIDFILE).unlink(missing_ok=True)


def _pg_bin() -> Path:
    for version in ("17", "16", "15", "14", "13"):
        path = Path(f"/usr/lib/postgresql/{version}/bin")
        if (path / "initdb").exists():
            return path
    raise ServiceError("PostgreSQL server binaries not found: 'sudo apt-get install postgresql'.")


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on loopback, owned by the postgres user. ``settings`` are
    server parameters passed at start (``-c name=value``), e.g. ``{"max_connections": "5"}``."""

    datadir: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    @classmethod
    def create(cls, settings: dict[str, str] | None = None) -> Postgres:
        root = Path(tempfile.mkdtemp(prefix="pg-"))
        datadir = root / "data"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        for name, value in (settings or {}).items():
            if not re.fullmatch(r"[a-z_]+", name) or not re.fullmatch(r"[A-Za-z0-9_.]+", str(value)):
                raise ServiceError(f"PostgreSQL setting {name}={value!r} is not a plain name and value")
        pg = cls(datadir, free_port(), dict(settings or {}))
        pg._as_postgres(str(_pg_bin() / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-sync")
        pg.start()
        return pg

    def running(self) -> bool:
        return self._as_postgres(str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "status",
                                 check=False).returncode == 0

    def start(self) -> None:
        if self.running():
            return
        self._as_postgres(str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-w", "-l",
                          str(self.datadir.parent / "log"), "-o",
                          " ".join([f"-p {self.port} -k {self.datadir.parent} -h 127.0.0.1 -F",
                                    *(f"-c {k}={v}" for k, v in self.settings.items())]), "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(_pg_bin() / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop",
                          check=False)

    def connection_string(self, database: str = "postgres") -> str:
        return (f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={self.port};Database={database};"
                "Uid=postgres;Pwd=;")

    def create_database(self, name: str) -> str:
        self._as_postgres("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c",
                          f'CREATE DATABASE "{name}"')
        return self.connection_string(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)
