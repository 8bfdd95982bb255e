"""Real services for the tests: Azurite, SQLite through pyodbc, PostgreSQL."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devhost.functions import discover, registries  # noqa: E402
from devhost.services import Azurite, Postgres, free_port  # noqa: E402
from devhost.worker import FunctionWorker, load_app  # noqa: E402
from shared.blob_access import ensure_container  # noqa: E402
from shared.settings import INPUT_CONTAINER  # noqa: E402


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    service = Azurite.start(port=free_port(), location=tmp_path_factory.mktemp("azurite"))
    ensure_container(service.connection_string, INPUT_CONTAINER)
    yield service
    service.stop()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[str]:
    """An Azurite of the test's own (end-to-end tests poll, kill and restart hosts on it)."""
    service = Azurite.start(port=free_port(), location=tmp_path / "azurite")
    ensure_container(service.connection_string, INPUT_CONTAINER)
    yield service.connection_string
    service.stop()


@pytest.fixture
def storage_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return azurite.connection_string


@pytest.fixture
def sqlite_cs(tmp_path: Path) -> str:
    return f"Driver={{SQLite3}};Database={tmp_path / 'images.db'};Timeout=2000;"


@pytest.fixture
def sql_env(sqlite_cs: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SqlConnectionString", sqlite_cs)
    return sqlite_cs


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres.create()
    yield server
    server.destroy()


_db_counter = iter(range(1, 10_000))


@pytest.fixture
def postgres_cs(postgres: Postgres) -> str:
    return postgres.create_database(f"images_{next(_db_counter)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_cs(request: pytest.FixtureRequest) -> str:
    """Each store test runs on both engines the machine can run for real."""
    name = "sqlite_cs" if request.param == "sqlite" else "postgres_cs"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def worker() -> Iterator[FunctionWorker]:
    """Microsoft's worker (azure-functions-runtime-v1) with every function folder of the app loaded, as in Azure.
    Its registry is process-global, so the session shares one; tests add their own folders to it."""
    app_worker = load_app(ROOT)
    assert not app_worker.load_errors, app_worker.load_errors
    yield app_worker
    app_worker.close()


@pytest.fixture(scope="session")
def orchestrators(worker: FunctionWorker) -> dict:
    """The app's orchestrators by name, each call an InvocationRequest through the worker."""
    return registries(worker, discover(ROOT))[0]


def add_function(worker: FunctionWorker, root: Path, name: str, bindings: list[dict], code: str) -> Path:
    """Write a function folder (function.json + __init__.py) under ``root`` and load it into the worker."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function.json").write_text(json.dumps({"scriptFile": "__init__.py", "bindings": bindings}))
    (folder / "__init__.py").write_text(code)
    worker.load(folder)
    return folder
