"""azd hooks (azure.yaml): the two steps Bicep cannot do, run on the machine that runs `azd up`.

grant-sql (postprovision)
    Migrates the schema (shared.store.migrations, the same code as `make migrate`) with the rights
    of the server's Entra admin (the person running azd), then creates the app's managed identity
    as a database user with run-time rights only (README lists them): no DDL, so the app never
    takes schema locks and a compromised app cannot change the table. Bicep has no resource for
    users inside a database; it must be T-SQL, through mssql-python with
    ``Authentication=ActiveDirectoryDefault`` (azure-identity's DefaultAzureCredential, which
    includes the azd login).
subscribe-events (postdeploy)
    Subscribes EventGridStarter to BlobCreated/BlobDeleted on images-input. Event Grid validates a
    webhook when the subscription is created, so the function must be deployed first; Microsoft's
    Flex sample (Azure-Samples/functions-quickstart-python-azd-eventgrid-blob) creates its
    subscription after deployment for that reason. The endpoint is the Event Grid extension's
    webhook, ``/runtime/webhooks/eventgrid?functionName=...&code=<eventgrid_extension system key>``
    (Microsoft docs, "How to work with Event Grid triggers and bindings in Azure Functions"); the
    key goes from ARM straight into the subscription and is never printed or stored.
    Delivery: an explicit retry policy (Event Grid's maxima, 30 attempts within 24 hours) and a
    dead-letter destination, the host storage account's ``eventgrid-deadletter`` container, written
    with the system topic's managed identity (``deadLetterWithResourceIdentity``; Microsoft docs,
    "Set dead-letter location and retry policy" and "Event delivery with a managed identity"). An
    event that still fails is kept there instead of dropped; ``shared.deadletter`` re-queues it.

Both read azd's environment (the outputs of infra/main.bicep) and are idempotent.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from typing import Any

INPUT_CONTAINER = "images-input"
STARTER_FUNCTION = "EventGridStarter"
SUBSCRIPTION_NAME = "images-input-to-eventgridstarter"
EVENT_TYPES = ("Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted")
# Run-time rights of the app's identity, on the objects the migration created. The keyword
# trigger's writes to ImageKeyword are granted explicitly too (rather than relying on ownership
# chaining from the trigger). Earlier releases made the identity a member of these roles; the hook
# takes them away.
RUNTIME_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE ON dbo.ImageMetadata TO {user};",
    "GRANT SELECT, INSERT, DELETE ON dbo.ImageKeyword TO {user};",
    "GRANT SELECT ON dbo.SchemaVersion TO {user};",
)
DROPPED_ROLES = ("db_ddladmin", "db_datawriter", "db_datareader")
# Event Grid's limits for a subscription's retry policy (1-30 attempts, 1-1440 minutes): the most
# it will try, so a database paused or an app down for hours still gets its events.
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TTL_MINUTES = 1440
ARM = "https://management.azure.com"
API = {"sites": "2024-04-01", "sql": "2023-08-01", "eventgrid": "2025-02-15"}


def require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        sys.exit(f"azd hook: {name} is not set; run this through azd (azd provision / azd deploy).")
    return value


def quote_name(name: str) -> str:
    """A T-SQL delimited identifier: [name] with ] doubled."""
    return "[" + name.replace("]", "]]") + "]"


def quote_string(value: str) -> str:
    """A T-SQL Unicode literal with ' doubled."""
    return "N'" + value.replace("'", "''") + "'"


# Azure's rule for user-assigned identity names (3-128 letters, digits, '-' and '_').
_IDENTITY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,127}")


def grant_sql_statements(identity_name: str) -> list[str]:
    """CREATE USER for the identity (if missing), no role memberships, the grants README lists."""
    if not _IDENTITY_NAME.fullmatch(identity_name):
        raise ValueError(f"{identity_name!r} is not a managed identity name")
    user = quote_name(identity_name)
    statements = [
        f"IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = {quote_string(identity_name)}) "
        f"CREATE USER {user} FROM EXTERNAL PROVIDER;"
    ]
    statements += [f"IF IS_ROLEMEMBER(N'{role}', {quote_string(identity_name)}) = 1 "
                   f"ALTER ROLE {role} DROP MEMBER {user};" for role in DROPPED_ROLES]
    statements += [grant.format(user=user) for grant in RUNTIME_GRANTS]
    return statements


def migrate_schema(conn: Any) -> list[int]:
    """The app's own migrations, run with the admin's DDL rights before the grants."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from shared.store.dialects import TSqlDialect
    from shared.store.migrations import migrate

    return migrate(conn, TSqlDialect())


_BLOCKED_IP = re.compile(r"Client with IP address '(\d{1,3}(?:\.\d{1,3}){3})' is not allowed")


def blocked_client_ip(message: str) -> str | None:
    """The caller's address from Azure SQL's firewall refusal (error 40615), if that is the error."""
    match = _BLOCKED_IP.search(message)
    return match.group(1) if match else None


def event_subscription_body(function_host: str, system_key: str, dead_letter_account_id: str,
                            dead_letter_container: str) -> dict[str, Any]:
    """The Event Grid subscription: blob created/deleted in images-input, to EventGridStarter, with
    undeliverable events dead-lettered to a container of the host storage account."""
    return {
        "properties": {
            "destination": {
                "endpointType": "WebHook",
                "properties": {
                    "endpointUrl": f"https://{function_host}/runtime/webhooks/eventgrid"
                                   f"?functionName={STARTER_FUNCTION}&code={system_key}",
                    "maxEventsPerBatch": 1,
                },
            },
            "filter": {
                "includedEventTypes": list(EVENT_TYPES),
                "subjectBeginsWith": f"/blobServices/default/containers/{INPUT_CONTAINER}/blobs/",
            },
            "eventDeliverySchema": "EventGridSchema",
            "retryPolicy": {"maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS,
                            "eventTimeToLiveInMinutes": EVENT_TTL_MINUTES},
            "deadLetterWithResourceIdentity": {
                "identity": {"type": "SystemAssigned"},
                "deadLetterDestination": {
                    "endpointType": "StorageBlob",
                    "properties": {"resourceId": dead_letter_account_id,
                                   "blobContainerName": dead_letter_container},
                },
            },
        }
    }


def _credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def arm(method: str, path: str, api: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Azure Resource Manager call with the azd user's token."""
    token = _credential().get_token(f"{ARM}/.default").token
    request = urllib.request.Request(
        f"{ARM}{path}?api-version={api}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read().decode() or "{}"
    return json.loads(text)


def grant_sql() -> None:
    import mssql_python

    identity = require("AZURE_APP_IDENTITY_NAME")
    server_id = require("AZURE_SQL_SERVER_ID")
    cs = (f"Server=tcp:{require('AZURE_SQL_SERVER_FQDN')},1433;Database={require('AZURE_SQL_DATABASE_NAME')};"
          "Encrypt=yes;TrustServerCertificate=no;Authentication=ActiveDirectoryDefault;")
    rule = None
    try:
        for attempt in range(12):
            try:
                conn = mssql_python.connect(cs, autocommit=False, timeout=60)
                break
            except mssql_python.Error as exc:
                ip = blocked_client_ip(str(exc))
                if ip and rule is None:
                    rule = f"{server_id}/firewallRules/azd-hook-{ip.replace('.', '-')}"
                    print(f"azd hook: opening the SQL firewall to {ip} while the user is created")
                    arm("PUT", rule, API["sql"], {"properties": {"startIpAddress": ip, "endIpAddress": ip}})
                elif attempt == 11:
                    raise
                time.sleep(10)  # a paused serverless database answers 40613 while it resumes
        else:
            sys.exit("azd hook: could not connect to the database; see the errors above.")
        done = migrate_schema(conn)
        print(f"azd hook: schema migrations applied: {done or 'none (current)'}")
        cursor = conn.cursor()
        for statement in grant_sql_statements(identity):
            cursor.execute(statement)
        conn.commit()
        conn.close()
        print(f"azd hook: database user {identity} has SELECT/INSERT/UPDATE on ImageMetadata (no DDL)")
    finally:
        if rule is not None:
            arm("DELETE", rule, API["sql"])


def subscribe_events() -> None:
    site_id = require("AZURE_FUNCTION_APP_ID")
    topic_id = require("AZURE_EVENTGRID_SYSTEM_TOPIC_ID")
    host = arm("GET", site_id, API["sites"])["properties"]["defaultHostName"]
    key = None
    for _ in range(30):  # the host creates the extension's key when it first starts
        key = arm("POST", f"{site_id}/host/default/listKeys", API["sites"]).get("systemKeys", {}).get(
            "eventgrid_extension")
        if key:
            break
        time.sleep(10)
    if not key:
        sys.exit("azd hook: the function app has no eventgrid_extension key yet; is EventGridStarter "
                 "deployed? Run `azd deploy` again.")
    path = f"{topic_id}/eventSubscriptions/{SUBSCRIPTION_NAME}"
    body = event_subscription_body(host, key, require("AZURE_STORAGE_ACCOUNT_ID"),
                                   require("AZURE_EVENTGRID_DEADLETTER_CONTAINER"))
    arm("PUT", path, API["eventgrid"], body)
    for _ in range(30):
        state = arm("GET", path, API["eventgrid"])["properties"].get("provisioningState")
        if state in ("Succeeded", "Failed"):
            break
        time.sleep(5)
    print(f"azd hook: Event Grid subscription {SUBSCRIPTION_NAME}: {state}")
    if state != "Succeeded":
        sys.exit(1)


def main(argv: list[str]) -> None:
    steps = {"grant-sql": grant_sql, "subscribe-events": subscribe_events}
    if len(argv) != 1 or argv[0] not in steps:
        sys.exit(f"usage: azd_hooks.py {'|'.join(steps)}")
    try:
        steps[argv[0]]()
    except urllib.error.HTTPError as exc:
        sys.exit(f"azd hook: Azure refused {exc.url.split('?')[0]}: {exc.code} {exc.read().decode()[:500]}")


if __name__ == "__main__":
    main(sys.argv[1:])
