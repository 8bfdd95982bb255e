"""The HTTP API that ``DurableOrchestrationClient`` calls (its ``rpcBaseUrl``), on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from devhost.engine import ACTIVE, Engine, InstanceAlreadyExists, UnknownFunction
from devhost.protocol import parse_timestamp, timestamp

_STATUS_CODES = {"Completed": 200, "Pending": 202, "Running": 202, "ContinuedAsNew": 202,
                 "Suspended": 202, "Failed": 500, "Terminated": 400, "Canceled": 400}


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() == "true"


def _wire_time(text: str | None) -> datetime | None:
    """A query-string time (the SDK sends '%Y-%m-%dT%H:%M:%S.%fZ'); None when absent or unreadable."""
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


RPC_PREFIX = "/durabletask"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"


def client_binding(origin: str, task_hub: str, system_key: str, connection: str = "Storage") -> str:
    """The durableClient binding's JSON, as the extension builds it for an out-of-proc client.

    azure-functions-durable-extension ``BindingHelper.DurableOrchestrationClientToString`` serialises
    ``OrchestrationClientInputData`` with Newtonsoft (nulls kept): taskHubName, connectionName,
    creationUrls and managementUrls (``HttpApiHandler.GetInstanceCreationLinks`` /
    ``CreateHttpManagementPayload`` on the webhook base ``/runtime/webhooks/durabletask`` with the
    extension's ``code`` key), baseUrl, requiredQueryStringParameters, rpcBaseUrl (the local RPC
    listener, ``http://127.0.0.1:<port>/durabletask/``), httpBaseUrl, maxGrpcMessageSizeInBytes.
    The Python SDK uses only rpcBaseUrl.
    """
    base = origin.rstrip("/") + WEBHOOK_PREFIX
    code = f"code={system_key}"
    instance = f"{base}/instances/INSTANCEID"
    suffix = f"taskHub={task_hub}&connection={connection}&{code}"
    create = f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return json.dumps({
        "taskHubName": task_hub,
        "connectionName": None,
        "creationUrls": {
            "createNewInstancePostUri": f"{create}?{code}",
            "createAndWaitOnNewInstancePostUri":
                f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{code}",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{instance}?{suffix}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{suffix}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{suffix}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{suffix}",
            "purgeHistoryDeleteUri": f"{instance}?{suffix}",
            "restartPostUri": f"{instance}/restart?{suffix}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{suffix}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{suffix}",
        },
        "baseUrl": base,
        "requiredQueryStringParameters": code,
        "rpcBaseUrl": origin.rstrip("/") + RPC_PREFIX + "/",
        "httpBaseUrl": None,
        "maxGrpcMessageSizeInBytes": None,
    })


def build_app(engine: Engine, system_key: str | None = None) -> web.Application:
    """The extension's HTTP API: on the local RPC prefix (no key, loopback only) and on the public
    webhook prefix, which needs the extension's ``code`` (401 without it, as the host answers)."""
    routes = web.RouteTableDef()

    @routes.post("/orchestrators/{name}")
    @routes.post("/orchestrators/{name}/{instance_id}")
    async def start(request: web.Request) -> web.Response:
        body = await request.text()
        input_json: str | None = None
        if body.strip():
            decoded: Any = json.loads(body)
            # The SDK JSON-encodes the input, then aiohttp encodes that string again.
            input_json = decoded if isinstance(decoded, str) else json.dumps(decoded)
        name = request.match_info["name"]
        try:
            instance_id = engine.start(name, request.match_info.get("instance_id"), input_json)
        except UnknownFunction as exc:
            return web.json_response({"Message": "One or more of the arguments submitted is incorrect",
                                      "ExceptionMessage": str(exc)}, status=400)
        except InstanceAlreadyExists as exc:
            return web.json_response({
                "Message": "Something went wrong while processing your request",
                "ExceptionMessage": str(exc),
                "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
            }, status=500)
        base = str(request.url.origin()) + WEBHOOK_PREFIX
        return web.json_response({
            "id": instance_id,
            "statusQueryGetUri": f"{base}/instances/{instance_id}",
            "terminatePostUri": f"{base}/instances/{instance_id}/terminate?reason={{text}}",
        }, status=202)

    @routes.get("/instances/{instance_id}")
    async def status(request: web.Request) -> web.Response:
        body = engine.status(request.match_info["instance_id"], show_history=_flag(request, "showHistory"),
                             show_input=_flag(request, "showInput"))
        if body is None:
            return web.Response(status=404)
        return web.json_response(body, status=_STATUS_CODES.get(body["runtimeStatus"], 200))

    @routes.get("/instances/")
    @routes.get("/instances")
    async def query(request: web.Request) -> web.Response:
        statuses = [s for s in request.query.get("runtimeStatus", "").split(",") if s]
        rows = engine.query(statuses, request.query.get("instanceIdPrefix"),
                            request.query.get("createdTimeFrom"), request.query.get("createdTimeTo"))
        return web.json_response(rows)

    @routes.delete("/instances/")
    @routes.delete("/instances")
    async def purge_by_filter(request: web.Request) -> web.Response:
        """Purge by time window, as the extension's ``HandleDeleteHistoryWithFiltersRequestAsync``
        answers it (azure-functions-durable-extension, src/WebJobs.Extensions.DurableTask/
        HttpApiHandler.cs): ``createdTimeFrom`` required (400 without it), ``createdTimeTo``
        defaults to now, ``runtimeStatus`` a comma-separated list (none: every status); 404 with
        no body when nothing was deleted, else 200 ``{"instancesDeleted": n}`` (its
        PurgeHistoryResult, ``[JsonProperty("instancesDeleted")]``)."""
        created_from = _wire_time(request.query.get("createdTimeFrom"))
        if created_from is None:
            return web.json_response("Please provide value for 'createdTimeFrom' parameter.", status=400)
        created_to = _wire_time(request.query.get("createdTimeTo")) or engine.clock.now()
        statuses = [s for s in request.query.get("runtimeStatus", "").split(",") if s]
        deleted = engine.purge(timestamp(created_from), timestamp(created_to), statuses)
        if deleted == 0:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    @routes.delete("/instances/{instance_id}")
    async def purge_one(request: web.Request) -> web.Response:
        """Purge one instance (``HandleDeleteHistoryByIdRequestAsync``): 404 when unknown, 412 while
        it is not in a terminal state, else 200 ``{"instancesDeleted": 1}``."""
        instance_id = request.match_info["instance_id"]
        found = engine.status(instance_id)
        if found is None:
            return web.Response(status=404)
        if found["runtimeStatus"] in ACTIVE:
            return web.json_response(
                f"Only orchestrations in a terminal state can be purged, but the orchestration with "
                f"instance ID {instance_id} has status {found['runtimeStatus']}", status=412)
        deleted = engine.purge_instance(instance_id)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    @routes.post("/instances/{instance_id}/terminate")
    async def terminate(request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        if engine.status(instance_id) is None:
            return web.Response(status=404)
        done = engine.terminate(instance_id, request.query.get("reason", ""))
        return web.Response(status=202 if done else 410)

    @web.middleware
    async def webhook_key(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(WEBHOOK_PREFIX) and request.query.get("code") != system_key:
            return web.Response(status=401)
        return await handler(request)

    app = web.Application(middlewares=[webhook_key])
    for route in routes:
        for prefix in (RPC_PREFIX, WEBHOOK_PREFIX):
            app.router.add_route(route.method, prefix + route.path, route.handler)
    return app
