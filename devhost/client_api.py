"""The HTTP API that ``DurableOrchestrationClient`` calls (its ``rpcBaseUrl``), on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devhost.engine import Engine, InstanceAlreadyExists, UnknownFunction

_STATUS_CODES = {"Completed": 200, "Pending": 202, "Running": 202, "ContinuedAsNew": 202,
                 "Suspended": 202, "Failed": 500, "Terminated": 400, "Canceled": 400}


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() == "true"


def client_binding(rpc_base_url: str, task_hub: str) -> str:
    """The JSON the durableClient binding hands to a function."""
    base = rpc_base_url.rstrip("/")
    return json.dumps({
        "taskHubName": task_hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{base}/instances/INSTANCEID",
            "terminatePostUri": f"{base}/instances/INSTANCEID/terminate?reason={{text}}",
        },
        "baseUrl": base,
        "requiredQueryStringParameters": "",
        "rpcBaseUrl": base + "/",
        "httpBaseUrl": "",
    })


def build_app(engine: Engine) -> web.Application:
    routes = web.RouteTableDef()

    @routes.post("/durabletask/orchestrators/{name}")
    @routes.post("/durabletask/orchestrators/{name}/{instance_id}")
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
        base = str(request.url.origin()) + "/durabletask"
        return web.json_response({
            "id": instance_id,
            "statusQueryGetUri": f"{base}/instances/{instance_id}",
            "terminatePostUri": f"{base}/instances/{instance_id}/terminate?reason={{text}}",
        }, status=202)

    @routes.get("/durabletask/instances/{instance_id}")
    async def status(request: web.Request) -> web.Response:
        body = engine.status(request.match_info["instance_id"], show_history=_flag(request, "showHistory"),
                             show_input=_flag(request, "showInput"))
        if body is None:
            return web.Response(status=404)
        return web.json_response(body, status=_STATUS_CODES.get(body["runtimeStatus"], 200))

    @routes.get("/durabletask/instances/")
    @routes.get("/durabletask/instances")
    async def query(request: web.Request) -> web.Response:
        statuses = [s for s in request.query.get("runtimeStatus", "").split(",") if s]
        rows = engine.query(statuses, request.query.get("instanceIdPrefix"),
                            request.query.get("createdTimeFrom"), request.query.get("createdTimeTo"))
        return web.json_response(rows)

    @routes.post("/durabletask/instances/{instance_id}/terminate")
    async def terminate(request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        if engine.status(instance_id) is None:
            return web.Response(status=404)
        done = engine.terminate(instance_id, request.query.get("reason", ""))
        return web.Response(status=202 if done else 410)

    app = web.Application()
    app.add_routes(routes)
    return app
