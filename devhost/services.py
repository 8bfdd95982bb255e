"""Starting and stopping the real local services: Azurite and (for tests) PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devhost.functions import APP_ROOT

AZURITE_VERSION = "3.35.0"
# Azurite's published development account key: public, identical on every machine.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class ServiceError(Exception):
    """A local service could not start; the message says what to do."""


def azurite_binary() -> Path:
    path = APP_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists():
        raise ServiceError(
            f"Azurite is not installed in {path.parent}. Run 'make tools' (needs Node.js 20 and npm: "
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


@dataclass
class Azurite:
    """A running Azurite blob service (the only service the pipeline needs)."""

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

    @classmethod
    def start(cls, port: int = 10000, location: Path | None = None, log: Path | None = None,
              cert: Path | None = None, key: Path | None = None, oauth: bool = False) -> Azurite:
        """Start the blob service; with ``cert``/``key`` (PEM) it serves HTTPS, and ``oauth``
        adds Azurite's ``--oauth basic`` bearer-token checks (which need HTTPS)."""
        if oauth and not (cert and key):
            raise ServiceError("Azurite's OAuth mode needs HTTPS: pass cert and key (PEM files).")
        tls = ["--cert", str(cert), "--key", str(key)] if cert and key else []
        binary = azurite_binary()
        if not port_free(port):
            raise ServiceError(
                f"port {port} is already taken (another Azurite?). Stop it, or choose another port "
                "with AZURITE_PORT=<port>."
            )
        location = location or Path(tempfile.mkdtemp(prefix="azurite-"))
        location.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab") if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
             "--skipApiVersionCheck", "--disableTelemetry", "--loose", *tls,
             *(["--oauth", "basic"] if oauth else [])],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for_port(port, 30, proc)
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


def _pg_bin() -> Path:
    for version in ("17", "16", "15", "14", "13"):
        path = Path(f"/usr/lib/postgresql/{version}/bin")
        if (path / "initdb").exists():
            return path
    raise ServiceError("PostgreSQL server binaries not found: 'sudo apt-get install postgresql'.")


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on loopback, owned by the postgres user."""

    datadir: Path
    port: int

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    @classmethod
    def create(cls) -> Postgres:
        root = Path(tempfile.mkdtemp(prefix="pg-"))
        datadir = root / "data"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        pg = cls(datadir, free_port())
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
                          f"-p {self.port} -k {self.datadir.parent} -h 127.0.0.1 -F", "start")

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
