"""Discovering the app's functions from their function.json files, as the host does."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED_TRIGGERS = {"blobTrigger", "orchestrationTrigger", "activityTrigger", "eventGridTrigger",
                      "timerTrigger"}
SUPPORTED_BINDINGS = SUPPORTED_TRIGGERS | {"durableClient"}
APP_ROOT = Path(__file__).resolve().parent.parent


class BindingError(Exception):
    """A function.json the local host cannot run, with the reason."""


@dataclass
class FunctionSpec:
    name: str
    folder: Path
    bindings: list[dict[str, Any]]
    main: Callable[..., Any]

    @property
    def trigger(self) -> dict[str, Any]:
        return next(b for b in self.bindings if b["type"] in SUPPORTED_TRIGGERS)

    def binding(self, binding_type: str) -> dict[str, Any] | None:
        return next((b for b in self.bindings if b["type"] == binding_type), None)


def load_function(folder: Path) -> FunctionSpec:
    config = json.loads((folder / "function.json").read_text())
    bindings = config.get("bindings") or []
    for b in bindings:
        if b.get("type") not in SUPPORTED_BINDINGS:
            raise BindingError(f"{folder.name}/function.json: binding type {b.get('type')!r} is not "
                               f"supported by the local host (supported: {sorted(SUPPORTED_BINDINGS)})")
    triggers = [b for b in bindings if b["type"] in SUPPORTED_TRIGGERS]
    if len(triggers) != 1:
        raise BindingError(f"{folder.name}/function.json must have exactly one trigger, has {len(triggers)}")
    if str(folder.parent) not in sys.path:
        sys.path.insert(0, str(folder.parent))
    module = importlib.import_module(folder.name)
    script = config.get("scriptFile", "__init__.py")
    if script != "__init__.py":
        raise BindingError(f"{folder.name}: scriptFile {script!r} is not supported (use __init__.py)")
    main = getattr(module, config.get("entryPoint", "main"), None)
    if not callable(main):
        raise BindingError(f"{folder.name}/__init__.py has no callable 'main'")
    params = set(inspect.signature(main).parameters)
    names = {b["name"] for b in bindings}
    if params != names:
        raise BindingError(f"{folder.name}: main's parameters {sorted(params)} do not match the "
                           f"binding names {sorted(names)} in function.json")
    return FunctionSpec(folder.name, folder, bindings, main)


def is_disabled(name: str, env: dict[str, str] | None = None) -> bool:
    """The app setting ``AzureWebJobs.<name>.Disabled`` set to true or 1 switches a function off
    (MicrosoftDocs azure-docs, articles/azure-functions/disable-function.md)."""
    value = (os.environ if env is None else env).get(f"AzureWebJobs.{name}.Disabled", "")
    return value.strip().lower() in ("true", "1")


def discover(app_root: Path = APP_ROOT) -> dict[str, FunctionSpec]:
    """The enabled functions of the app (a disabled one is not loaded, as the host skips it)."""
    specs = {}
    for path in sorted(app_root.glob("*/function.json")):
        if is_disabled(path.parent.name):
            continue
        spec = load_function(path.parent)
        specs[spec.name] = spec
    return specs


def registries(specs: dict[str, FunctionSpec]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Orchestrator mains and activity callables, keyed by function name, for the engine."""
    orchestrators = {n: s.main for n, s in specs.items() if s.trigger["type"] == "orchestrationTrigger"}
    activities: dict[str, Any] = {}
    for name, spec in specs.items():
        if spec.trigger["type"] == "activityTrigger":
            param = spec.trigger["name"]
            activities[name] = (lambda fn, key: lambda value: fn(**{key: value}))(spec.main, param)
    return orchestrators, activities
