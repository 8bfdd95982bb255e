"""Microsoft's Python worker for the v1 model (azure-functions-runtime-v1), driven as the host drives it.

On Python 3.13 Azure runs a v1 app through this package: the platform's proxy worker starts the
runtime's thread pool, sends WorkerInitRequest, one FunctionLoadRequest per function.json, then an
InvocationRequest per trigger, all as FunctionRpc protobuf messages (handlers in
``azure_functions_runtime_v1.handle_event``; the proxy calls ``start_threadpool_executor()`` before
``worker_init_request``). This module does the same in-process, so the worker's own checks apply to
our app exactly as in Azure: annotations against binding types and ``$return`` rules at load, the
binding converters (``azure.functions`` InputStream, durable context, ...) and "no return value
without $return" / JSON-serialisable outputs at invocation.

The protobuf classes are the ones the runtime's wheel ships for its own tests (``tests/protos``);
they are imported from the installed distribution under another package name, because the app's
own ``tests`` package would shadow them.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import json
import sys
import threading
import types
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PROTOS_ALIAS = "_devhost_function_rpc"


def load_protos() -> types.ModuleType:
    """FunctionRpc_pb2 from the azure-functions-runtime-v1 wheel, without its grpc stubs."""
    if f"{_PROTOS_ALIAS}.FunctionRpc_pb2" in sys.modules:
        return sys.modules[f"{_PROTOS_ALIAS}.FunctionRpc_pb2"]
    try:
        dist = importlib.metadata.distribution("azure-functions-runtime-v1")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("azure-functions-runtime-v1 is not installed (Python 3.13 and "
                           "'pip install -r requirements-dev.txt'; 'make setup' does both)") from None
    root = Path(str(dist.locate_file("tests/protos")))
    if not (root / "FunctionRpc_pb2.py").exists():
        raise RuntimeError(f"azure-functions-runtime-v1 {dist.version} ships no protobuf classes at {root}")
    package = types.ModuleType(_PROTOS_ALIAS)
    package.__path__ = [str(root)]
    sys.modules[_PROTOS_ALIAS] = package
    return importlib.import_module(f"{_PROTOS_ALIAS}.FunctionRpc_pb2")


@dataclass(frozen=True)
class Data:
    """One TypedData value as the host puts it on the wire: kind is string, json or bytes."""

    kind: str
    value: str | bytes

    @classmethod
    def json_of(cls, value: Any) -> Data:
        return cls("json", json.dumps(value))

    def to_proto(self, protos: types.ModuleType) -> Any:
        return protos.TypedData(**{self.kind: self.value})

    @classmethod
    def from_proto(cls, typed: Any) -> Data | None:
        kind = typed.WhichOneof("data") if typed is not None else None
        if kind is None:
            return None
        if kind not in ("string", "json", "bytes"):
            raise ValueError(f"the worker returned TypedData of kind {kind!r}, which this host does not read")
        return cls(kind, getattr(typed, kind))


class FunctionLoadFailed(Exception):
    """The worker refused to load a function (as Azure would: the function is then not indexed)."""


class InvocationFailed(Exception):
    """The worker reported a failed invocation; the message is the RpcException's, as the host sees it."""

    def __init__(self, message: str, exception_type: str = "") -> None:
        super().__init__(message)
        self.exception_type = exception_type


@dataclass
class LoadedFunction:
    name: str
    function_id: str
    bindings: list[dict[str, Any]]


@dataclass
class Request:
    """What the proxy worker hands each handler: the StreamingMessage and the worker properties."""

    request: Any
    properties: dict[str, Any] = field(default_factory=dict)


def _binding_info(protos: types.ModuleType, binding: dict[str, Any]) -> Any:
    direction = protos.BindingInfo.Direction.Value(binding.get("direction", "in"))
    data_type = protos.BindingInfo.DataType.Value(binding.get("dataType", "undefined"))
    return protos.BindingInfo(type=binding["type"], direction=direction, data_type=data_type)


class FunctionWorker:
    """One worker: its own event loop thread (async functions run there, as on the proxy's loop),
    the runtime's thread pool for sync ones. The runtime keeps its registry in module globals, so
    there is one app per process, as in Azure."""

    def __init__(self, app_root: Path) -> None:
        import azure_functions_runtime_v1 as runtime

        self.app_root = Path(app_root).resolve()
        self.protos = load_protos()
        self._runtime = runtime
        self.functions: dict[str, LoadedFunction] = {}
        self.load_errors: dict[str, str] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="functions-worker", daemon=True)
        self._thread.start()
        # Azure's proxy worker puts the app root on sys.path; functions import as __app__.<Folder>.
        if str(self.app_root) not in sys.path:
            sys.path.insert(0, str(self.app_root))
        self._call(self._init())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def run(self, coro: Any) -> Any:
        """Await ``coro`` on the worker's loop, where async functions and the Durable SDK's shared
        HTTP session live (tests acting as a durable client use it too)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _message(self, **kwargs: Any) -> Request:
        return Request(self.protos.StreamingMessage(request_id=uuid.uuid4().hex, **kwargs),
                       {"protos": self.protos, "host": "127.0.0.1"})

    async def _init(self) -> None:
        self._runtime.start_threadpool_executor()
        response = await self._runtime.worker_init_request(self._message(
            worker_init_request=self.protos.WorkerInitRequest(
                host_version="4.0.0", function_app_directory=str(self.app_root))))
        if response.result.status != self.protos.StatusResult.Success:
            raise RuntimeError(f"worker init failed: {response.result.exception.message}")

    def load(self, folder: Path) -> LoadedFunction:
        """FunctionLoadRequest built from the folder's function.json, as the host builds it."""
        folder = Path(folder).resolve()
        config = json.loads((folder / "function.json").read_text())
        bindings = list(config.get("bindings") or [])
        function_id = uuid.uuid5(uuid.NAMESPACE_URL, str(folder)).hex
        metadata = self.protos.RpcFunctionMetadata(
            name=folder.name, directory=str(folder), function_id=function_id,
            script_file=str(folder / config.get("scriptFile", "__init__.py")),
            entry_point=config.get("entryPoint", ""), language="python",
            raw_bindings=[json.dumps(b) for b in bindings])
        for b in bindings:
            metadata.bindings[b["name"]].CopyFrom(_binding_info(self.protos, b))
        request = self.protos.FunctionLoadRequest(function_id=function_id, metadata=metadata)
        response = self._call(self._runtime.function_load_request(self._message(function_load_request=request)))
        if response.result.status != self.protos.StatusResult.Success:
            error = response.result.exception
            self.load_errors[folder.name] = error.message
            raise FunctionLoadFailed(f"{folder.name}: {error.message}")
        loaded = LoadedFunction(folder.name, function_id, bindings)
        self.functions[folder.name] = loaded
        return loaded

    def _request(self, name: str, inputs: dict[str, Data], metadata: dict[str, Data] | None) -> Request:
        function = self.functions.get(name)
        if function is None:
            reason = self.load_errors.get(name, "no such function")
            raise InvocationFailed(f"function {name!r} is not loaded: {reason}")
        invocation = self.protos.InvocationRequest(invocation_id=uuid.uuid4().hex,
                                                   function_id=function.function_id)
        for binding_name, data in inputs.items():
            invocation.input_data.append(self.protos.ParameterBinding(name=binding_name,
                                                                      data=data.to_proto(self.protos)))
        for key, data in (metadata or {}).items():
            invocation.trigger_metadata[key].CopyFrom(data.to_proto(self.protos))
        return self._message(invocation_request=invocation)

    async def _invoke(self, request: Request) -> Data | None:
        response = await self._runtime.invocation_request(request)
        if response.result.status != self.protos.StatusResult.Success:
            error = response.result.exception
            raise InvocationFailed(error.message, error.type)
        return Data.from_proto(response.return_value) if response.HasField("return_value") else None

    def invoke(self, name: str, inputs: dict[str, Data], metadata: dict[str, Data] | None = None) -> Data | None:
        """Invoke and wait (from any thread but the worker's own)."""
        return self._call(self._invoke(self._request(name, inputs, metadata)))

    async def invoke_async(self, name: str, inputs: dict[str, Data],
                           metadata: dict[str, Data] | None = None) -> Data | None:
        """Invoke from another event loop without blocking it."""
        return await self.run(self._invoke(self._request(name, inputs, metadata)))

    def close(self) -> None:
        async def shutdown() -> None:
            from azure.durable_functions.models.utils import http_utils

            await http_utils._close_session()

        if self._loop.is_running():
            self._call(shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def load_app(app_root: Path, folders: list[Path] | None = None) -> FunctionWorker:
    """A worker with every function folder of the app loaded; load failures are kept, not raised."""
    worker = FunctionWorker(app_root)
    for folder in folders if folders is not None else sorted(p.parent for p in Path(app_root).glob("*/function.json")):
        try:
            worker.load(folder)
        except FunctionLoadFailed:
            pass
    return worker
