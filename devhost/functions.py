"""The app's functions as the host sees them: function.json discovery, and calls through the worker.

The host reads each folder's function.json (the trigger decides how it is driven); the code itself
is loaded and invoked only by Microsoft's worker (devhost.worker), never imported here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.worker import Data, FunctionWorker, InvocationFailed

SUPPORTED_TRIGGERS = {"blobTrigger", "orchestrationTrigger", "activityTrigger", "eventGridTrigger",
                      "timerTrigger"}
SUPPORTED_BINDINGS = SUPPORTED_TRIGGERS | {"durableClient"}
APP_ROOT = Path(__file__).resolve().parent.parent


class BindingError(Exception):
    """A function.json (or app layout) the local host cannot run, with the reason."""


@dataclass
class FunctionSpec:
    name: str
    folder: Path
    bindings: list[dict[str, Any]]

    @property
    def trigger(self) -> dict[str, Any]:
        return next(b for b in self.bindings if b["type"] in SUPPORTED_TRIGGERS)

    def binding(self, binding_type: str) -> dict[str, Any] | None:
        return next((b for b in self.bindings if b["type"] == binding_type), None)


def load_spec(folder: Path) -> FunctionSpec:
    config = json.loads((folder / "function.json").read_text())
    bindings = config.get("bindings") or []
    for b in bindings:
        if b.get("type") not in SUPPORTED_BINDINGS:
            raise BindingError(f"{folder.name}/function.json: binding type {b.get('type')!r} is not "
                               f"supported by the local host (supported: {sorted(SUPPORTED_BINDINGS)})")
    triggers = [b for b in bindings if b["type"] in SUPPORTED_TRIGGERS]
    if len(triggers) != 1:
        raise BindingError(f"{folder.name}/function.json must have exactly one trigger, has {len(triggers)}")
    return FunctionSpec(folder.name, folder.resolve(), bindings)


def check_v1_layout(app_root: Path) -> None:
    """A function_app.py at the root makes Azure's 3.13 worker index the app as the v2 model and
    ignore every function.json (runtime dispatch in azure-functions-python-worker's proxy)."""
    if (app_root / "function_app.py").exists():
        raise BindingError(f"{app_root / 'function_app.py'} exists: Azure would load this app as the v2 "
                           "programming model and ignore the function.json folders. Remove it.")


def is_disabled(name: str, env: dict[str, str] | None = None) -> bool:
    """The app setting ``AzureWebJobs.<name>.Disabled`` set to true or 1 switches a function off
    (MicrosoftDocs azure-docs, articles/azure-functions/disable-function.md)."""
    value = (os.environ if env is None else env).get(f"AzureWebJobs.{name}.Disabled", "")
    return value.strip().lower() in ("true", "1")


def discover(app_root: Path = APP_ROOT) -> dict[str, FunctionSpec]:
    """The enabled functions of the app (a disabled one is not loaded: its trigger never fires)."""
    check_v1_layout(app_root)
    specs = {}
    for path in sorted(app_root.glob("*/function.json")):
        if is_disabled(path.parent.name):
            continue
        spec = load_spec(path.parent)
        specs[spec.name] = spec
    return specs


def orchestrator_call(worker: FunctionWorker, spec: FunctionSpec) -> Callable[[str], str]:
    """context JSON in, OrchestratorState JSON out; a failure raises with the worker's message,
    which carries the SDK's ``$OutOfProcData$`` state as the extension expects."""
    param = spec.trigger["name"]

    def call(context_json: str) -> str:
        result = worker.invoke(spec.name, {param: Data("string", context_json)})
        if result is None:
            raise InvocationFailed(f"orchestrator {spec.name} returned no OrchestratorState")
        return result.value if isinstance(result.value, str) else result.value.decode()

    return call


def activity_call(worker: FunctionWorker, spec: FunctionSpec,
                  client_binding: Callable[[], str | None] = lambda: None) -> Callable[[str | None], str]:
    """Input JSON in (TypedData json, as the extension sends it), result JSON out. An activity with a
    ``durableClient`` input binding also gets the client's binding JSON, as any other client
    function does (the binding is not tied to a trigger type: docs/events-and-reconciliation.md)."""
    param = spec.trigger["name"]
    client = spec.binding("durableClient")

    def call(input_json: str | None) -> str:
        inputs = {param: Data("json", input_json if input_json is not None else "null")}
        if client is not None:
            binding = client_binding()
            if binding is None:
                raise InvocationFailed(f"activity {spec.name} has a durableClient binding but the host "
                                       "has no client endpoint yet")
            inputs[client["name"]] = Data("string", binding)
        result = worker.invoke(spec.name, inputs)
        if result is None:
            return "null"
        return result.value if isinstance(result.value, str) else result.value.decode()

    return call


def registries(worker: FunctionWorker, specs: dict[str, FunctionSpec],
               client_binding: Callable[[], str | None] = lambda: None,
               ) -> tuple[dict[str, Callable[[str], str]], dict[str, Callable[[str | None], str]]]:
    """Orchestrators and activities by name, each invoked through the worker; ``client_binding``
    gives the durableClient binding JSON to activities that declare one."""
    orchestrators = {n: orchestrator_call(worker, s) for n, s in specs.items()
                     if s.trigger["type"] == "orchestrationTrigger"}
    activities = {n: activity_call(worker, s, client_binding) for n, s in specs.items()
                  if s.trigger["type"] == "activityTrigger"}
    return orchestrators, activities
