"""What can be checked of infra/ and azure.yaml without Azure, Bicep or .NET.

Bicep cannot be compiled here (the CLI is a .NET binary fetched at install time). The templates are
parsed with pycep-parser (Checkov's Bicep parser, PyPI) and checked mechanically:

* every ``resource`` declaration is seen by the parser (none lost, no nested short-form children);
* every resource type@apiVersion is in ``PUBLISHED`` below, each entry read from Azure/bicep-types-az
  (``generated/<provider>/<namespace>/<version>/types.md``, the published Bicep type definitions),
  and every property the templates set is one that file defines for that type;
* azure.yaml's shape; the app settings: identity-based storage, mssql-python connection string, no
  secret-looking value, BlobTriggerStarter disabled; the Event Grid subscription the hook creates.

Each check is also run on a broken copy to show it rejects what it should (negative controls).
What only a real subscription can prove (deployment succeeds, the roles suffice, the webhook
validates, Flex runs Python 3.13 with these settings) is listed in infra/README.md.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from shared.errors import ConfigurationError
from shared.settings import (
    StorageIdentity,
    check_sql_connection_string,
    host_storage_connection_string,
    storage_connection_string,
)
from shared.store import MSSQL_PYTHON, driver_for
from tests.test_tsql import sqlfluff_problems

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
sys.path.insert(0, str(ROOT / "scripts"))
import azd_hooks  # noqa: E402

ANY = ...  # a property whose value is free-form (an object of app settings, tags, ...)
TYPES = "Azure/bicep-types-az generated/"

# type@apiVersion -> (types.md read for it, properties it defines that the templates may set).
# Nested dicts are the object types of those properties, also read from the same file.
PUBLISHED: dict[str, tuple[str, dict[str, Any]]] = {
    "Microsoft.Resources/resourceGroups@2024-03-01": (
        "resources/microsoft.resources/2024-03-01/types.md", {"location": ANY, "tags": ANY}),
    "Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31": (
        "msi/microsoft.managedidentity/2023-01-31/types.md", {"location": ANY, "tags": ANY}),
    "Microsoft.Storage/storageAccounts@2023-05-01": (
        "storage/microsoft.storage/2023-05-01/types.md",
        {"location": ANY, "tags": ANY, "kind": ANY, "sku": {"name": ANY},
         # StorageAccountPropertiesCreateParametersOrStorageAccountProperties
         "properties": {"allowBlobPublicAccess": ANY, "allowSharedKeyAccess": ANY,
                        "defaultToOAuthAuthentication": ANY, "minimumTlsVersion": ANY,
                        "supportsHttpsTrafficOnly": ANY}}),
    "Microsoft.Storage/storageAccounts/blobServices@2023-05-01": (
        "storage/microsoft.storage/2023-05-01/types.md", {}),
    "Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01": (
        "storage/microsoft.storage/2023-05-01/types.md", {}),
    "Microsoft.Authorization/roleAssignments@2022-04-01": (
        "authorization/microsoft.authorization/2022-04-01/types.md",
        {"scope": ANY, "properties": {"roleDefinitionId": ANY, "principalId": ANY, "principalType": ANY}}),
    "Microsoft.OperationalInsights/workspaces@2023-09-01": (
        "operationalinsights/microsoft.operationalinsights/2023-09-01/types.md",
        {"location": ANY, "tags": ANY, "properties": {"retentionInDays": ANY, "sku": {"name": ANY}}}),
    "Microsoft.Insights/components@2020-02-02": (
        "applicationinsights/microsoft.insights/2020-02-02/types.md",
        {"location": ANY, "tags": ANY, "kind": ANY,
         "properties": {"Application_Type": ANY, "WorkspaceResourceId": ANY, "DisableLocalAuth": ANY}}),
    "Microsoft.Sql/servers@2023-08-01": (
        "sql/microsoft.sql/2023-08-01/types.md",
        {"location": ANY, "tags": ANY,
         "properties": {"version": ANY, "minimalTlsVersion": ANY, "publicNetworkAccess": ANY,
                        # ServerExternalAdministrator
                        "administrators": {"administratorType": ANY, "azureADOnlyAuthentication": ANY,
                                           "login": ANY, "sid": ANY, "tenantId": ANY,
                                           "principalType": ANY}}}),
    "Microsoft.Sql/servers/firewallRules@2023-08-01": (
        "sql/microsoft.sql/2023-08-01/types.md",
        {"properties": {"startIpAddress": ANY, "endIpAddress": ANY}}),
    "Microsoft.Sql/servers/databases@2023-08-01": (
        "sql/microsoft.sql/2023-08-01/types.md",
        {"location": ANY, "tags": ANY,
         "sku": {"name": ANY, "tier": ANY, "family": ANY, "capacity": ANY},
         "properties": {"autoPauseDelay": ANY, "minCapacity": ANY, "maxSizeBytes": ANY,
                        "requestedBackupStorageRedundancy": ANY}}),
    "Microsoft.DurableTask/schedulers@2025-11-01": (
        "durabletask/microsoft.durabletask/2025-11-01/types.md",
        {"location": ANY, "tags": ANY, "properties": {"ipAllowlist": ANY, "sku": {"name": ANY, "capacity": ANY}}}),
    "Microsoft.DurableTask/schedulers/taskHubs@2025-11-01": (
        "durabletask/microsoft.durabletask/2025-11-01/types.md", {}),
    "Microsoft.Web/serverfarms@2024-04-01": (
        "web/microsoft.web/2024-04-01/types.md",
        {"location": ANY, "tags": ANY, "kind": ANY, "sku": {"name": ANY, "tier": ANY},
         "properties": {"reserved": ANY}}),
    "Microsoft.Web/sites@2024-04-01": (
        "web/microsoft.web/2024-04-01/types.md",
        {"location": ANY, "tags": ANY, "kind": ANY,
         "identity": {"type": ANY, "userAssignedIdentities": ANY},
         # SiteProperties, FunctionAppConfig, FunctionsDeployment(Storage(Authentication)),
         # FunctionsScaleAndConcurrency, FunctionsRuntime
         "properties": {"serverFarmId": ANY, "httpsOnly": ANY,
                        "functionAppConfig": {
                            "deployment": {"storage": {"type": ANY, "value": ANY, "authentication": {
                                "type": ANY, "userAssignedIdentityResourceId": ANY}}},
                            "scaleAndConcurrency": {"instanceMemoryMB": ANY, "maximumInstanceCount": ANY,
                                                    # FunctionsScaleAndConcurrencyTriggers(Http)
                                                    "triggers": {"http": {"perInstanceConcurrency": ANY}}},
                            "runtime": {"name": ANY, "version": ANY}},
                        # SiteProperties.virtualNetworkSubnetId (regional virtual network integration)
                        "virtualNetworkSubnetId": ANY}}),
    # sites/config named 'appsettings': StringDictionaryProperties (any string values).
    "Microsoft.Web/sites/config@2024-04-01": ("web/microsoft.web/2024-04-01/types.md", {"properties": ANY}),
    "Microsoft.EventGrid/systemTopics@2025-02-15": (
        "eventgrid/microsoft.eventgrid/2025-02-15/types.md",
        {"location": ANY, "tags": ANY, "identity": {"type": ANY},  # IdentityInfo
         "properties": {"source": ANY, "topicType": ANY}}),
    # Network (VNet integration + SQL private endpoint; NAT gateway for the scheduler's allow list):
    # VirtualNetworkPropertiesFormat, AddressSpace, Subnet, SubnetPropertiesFormat, Delegation,
    # ServiceDelegationPropertiesFormat, SubResource, PrivateEndpointProperties,
    # PrivateLinkServiceConnection(Properties), PrivateDnsZoneGroupPropertiesFormat,
    # PrivateDnsZoneConfig, PrivateDnsZonePropertiesFormat, PublicIPAddressSku,
    # PublicIPAddressPropertiesFormat, NatGatewaySku, NatGatewayPropertiesFormat.
    "Microsoft.Network/virtualNetworks@2024-05-01": (
        "network/microsoft.network/2024-05-01/types.md",
        {"location": ANY, "tags": ANY,
         "properties": {"addressSpace": {"addressPrefixes": ANY},
                        "subnets": {"name": ANY, "properties": {
                            "addressPrefix": ANY, "delegations": {"name": ANY, "properties": {"serviceName": ANY}},
                            "natGateway": {"id": ANY}, "privateEndpointNetworkPolicies": ANY}}}}),
    "Microsoft.Network/privateEndpoints@2024-05-01": (
        "network/microsoft.network/2024-05-01/types.md",
        {"location": ANY, "tags": ANY,
         "properties": {"subnet": {"id": ANY},
                        "privateLinkServiceConnections": {"name": ANY, "properties": {
                            "privateLinkServiceId": ANY, "groupIds": ANY}}}}),
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01": (
        "network/microsoft.network/2024-05-01/types.md",
        {"properties": {"privateDnsZoneConfigs": {"name": ANY, "properties": {"privateDnsZoneId": ANY}}}}),
    "Microsoft.Network/publicIPAddresses@2024-05-01": (
        "network/microsoft.network/2024-05-01/types.md",
        {"location": ANY, "tags": ANY, "sku": {"name": ANY},
         "properties": {"publicIPAllocationMethod": ANY, "publicIPAddressVersion": ANY}}),
    "Microsoft.Network/natGateways@2024-05-01": (
        "network/microsoft.network/2024-05-01/types.md",
        {"location": ANY, "tags": ANY, "sku": {"name": ANY},
         "properties": {"idleTimeoutInMinutes": ANY, "publicIpAddresses": {"id": ANY}}}),
    # Private DNS: PrivateZoneProperties, VirtualNetworkLinkProperties, SubResource.
    "Microsoft.Network/privateDnsZones@2020-06-01": (
        "privatedns/microsoft.network/2020-06-01/types.md", {"location": ANY, "tags": ANY}),
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01": (
        "privatedns/microsoft.network/2020-06-01/types.md",
        {"location": ANY, "tags": ANY,
         "properties": {"registrationEnabled": ANY, "virtualNetwork": {"id": ANY}}}),
    # RetentionPolicyProperties, RetentionPolicyDetails.
    "Microsoft.DurableTask/schedulers/retentionPolicies@2025-11-01": (
        "durabletask/microsoft.durabletask/2025-11-01/types.md",
        {"properties": {"retentionPolicies": {"retentionPeriodInDays": ANY, "orchestrationState": ANY}}}),
    # ScheduledQueryRuleProperties, ScheduledQueryRuleCriteria, Condition, ConditionFailingPeriods.
    "Microsoft.Insights/scheduledQueryRules@2023-12-01": (
        "monitor/microsoft.insights/2023-12-01/types.md",
        {"location": ANY, "tags": ANY, "kind": ANY,
         "properties": {"displayName": ANY, "description": ANY, "severity": ANY, "enabled": ANY, "scopes": ANY,
                        "evaluationFrequency": ANY, "windowSize": ANY, "autoMitigate": ANY,
                        "criteria": {"allOf": {"query": ANY, "timeAggregation": ANY, "operator": ANY,
                                               "threshold": ANY, "failingPeriods": {
                                                   "numberOfEvaluationPeriods": ANY,
                                                   "minFailingPeriodsToAlert": ANY}}}}}),
}
STRUCTURAL = {"name", "parent", "dependsOn", "depends_on"}


def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def resources(parsed: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(symbol, type@version, body) of each resource, conditional ones unwrapped."""
    for symbol, res in parsed["resources"].items():
        config = res["config"]
        if set(config) == {"condition", "config"}:
            config = config["config"]
        yield symbol, f"{res['type']}@{res['api_version']}", config


def unknown_properties(body: Any, schema: Any, path: str = "") -> list[str]:
    """Property paths set in the template that the type definition does not define (the items of
    an array are checked against the array's element type)."""
    if isinstance(body, list) and schema is not ANY:
        return [p for i, item in enumerate(body) for p in unknown_properties(item, schema, f"{path}[{i}].")]
    if schema is ANY or not isinstance(body, dict) or "function" in body or "operator" in body:
        return []
    problems = []
    for key, value in body.items():
        key = key.strip("'")
        if path == "" and key in STRUCTURAL:
            continue
        if key not in schema:
            problems.append(f"{path}{key}")
        else:
            problems += unknown_properties(value, schema[key], f"{path}{key}.")
    return problems


def template_problems(text: str, tmp_path: Path) -> list[str]:
    """Everything the mechanical check finds wrong with one Bicep file's text."""
    file = tmp_path / "template.bicep"
    file.write_text(text)
    try:
        parsed = parse(file)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the finding
        return [f"does not parse: {type(exc).__name__}"]
    problems = []
    declared = re.findall(r"^resource\s+(\w+)\s+'([^']+)'", text, flags=re.M)
    if len(declared) != len(parsed["resources"]):
        problems.append(f"parser saw {len(parsed['resources'])} of {len(declared)} resources")
    problems += [f"{sym}: nested short-form child {t!r}" for sym, t in declared if "@" not in t]
    for symbol, type_version, body in resources(parsed):
        if type_version not in PUBLISHED:
            problems.append(f"{symbol}: {type_version} is not in the verified list")
            continue
        problems += [f"{symbol}: {type_version} has no property {p}"
                     for p in unknown_properties(body, PUBLISHED[type_version][1])]
    return problems


BICEP_FILES = sorted(INFRA.glob("*.bicep"))


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_templates_use_only_published_types_versions_and_properties(path, tmp_path):
    assert template_problems(path.read_text(), tmp_path) == []


APP = (INFRA / "app.bicep").read_text()
BROKEN_TEMPLATES = {
    "unpublished api version": APP.replace("Microsoft.Web/sites@2024-04-01", "Microsoft.Web/sites@2099-01-01"),
    "misspelled property": APP.replace("allowSharedKeyAccess", "allowSharedKeyAcess"),
    "property of another type": APP.replace("httpsOnly: true", "httpsOnly: true\n    minimumTlsVersion: 'TLS1_2'"),
    "nested property not in the type": APP.replace("instanceMemoryMB: 2048", "instanceMemoryMb: 2048"),
    "property of an array item not in the type": APP.replace("privateEndpointNetworkPolicies: 'Disabled'",
                                                             "privateEndpointNetworkPolicy: 'Disabled'"),
    "nested short-form child": APP.replace(
        "resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = if (useDurableTaskScheduler) {\n"
        "  parent: scheduler\n", "resource taskHub 'taskHubs' = if (useDurableTaskScheduler) {\n  parent: scheduler\n"),
    "syntax error": APP.replace("resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {",
                                "resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {{"),
}


@pytest.mark.parametrize("name", list(BROKEN_TEMPLATES))
def test_template_check_rejects_broken_templates(name, tmp_path):
    assert BROKEN_TEMPLATES[name] != APP
    assert template_problems(BROKEN_TEMPLATES[name], tmp_path)


def test_every_verified_type_is_named_in_infra_readme_with_its_source():
    readme = (INFRA / "README.md").read_text()
    used = {tv for path in BICEP_FILES for _, tv, _ in resources(parse(path))}
    assert used <= set(PUBLISHED)
    for type_version in used:
        assert type_version in readme, type_version
        assert PUBLISHED[type_version][0] in readme, PUBLISHED[type_version][0]


# --- what the app gets --------------------------------------------------------------------------

def by_type(parsed: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for _, type_version, body in resources(parsed):
        found.setdefault(type_version.split("@")[0], []).append(body)
    return found


APP_PARSED = parse(INFRA / "app.bicep")
RESOURCES = by_type(APP_PARSED)


def app_settings(parsed: dict[str, Any]) -> dict[str, Any]:
    """The literal object of app settings (the first argument of union(...))."""
    [config] = by_type(parsed)["Microsoft.Web/sites/config"]
    props = config["properties"]
    literal = props["function"]["parameters"]["arg_1"] if "function" in props else props
    return {k.strip("'"): v for k, v in literal.items()}


SETTINGS = app_settings(APP_PARSED)
# Bicep interpolations replaced by values of the right shape, to feed the app's own parsers.
PLACEHOLDERS = {"${sqlServer.properties.fullyQualifiedDomainName}": "sql-x.database.windows.net",
                "${database.name}": "images", "${identity.properties.clientId}": "00000000-0000-0000-0000-000000000001"}


def substituted(value: str) -> str:
    for expression, example in PLACEHOLDERS.items():
        value = value.replace(expression, example)
    assert "${" not in value, value
    return value


def test_storage_settings_are_identity_based_as_shared_settings_reads_them():
    assert SETTINGS["AzureWebJobsStorage__credential"] == "managedidentity"
    assert "AzureWebJobsStorage" not in SETTINGS
    env = {"AzureWebJobsStorage__accountName": "stexample01", "AzureWebJobsStorage__credential": "managedidentity",
           "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001"}
    assert set(env) <= set(SETTINGS)
    target = host_storage_connection_string(env)
    assert isinstance(target, StorageIdentity) and target.managed_identity and target.client_id


def test_the_app_reads_images_from_the_images_account_setting():
    """On Azure the images account is ImagesStorage__*; locally (no such setting) AzureWebJobsStorage."""
    host = {"AzureWebJobsStorage__accountName": "sthost01", "AzureWebJobsStorage__credential": "managedidentity"}
    images = {"ImagesStorage__accountName": "stimg01", "ImagesStorage__credential": "managedidentity",
              "ImagesStorage__clientId": "00000000-0000-0000-0000-000000000001"}
    assert {"ImagesStorage__accountName", "ImagesStorage__credential", "ImagesStorage__clientId"} <= set(SETTINGS)
    target = storage_connection_string({**host, **images})
    assert isinstance(target, StorageIdentity)
    assert target.blob_service_uri == "https://stimg01.blob.core.windows.net" and target.managed_identity
    assert host_storage_connection_string({**host, **images}).blob_service_uri == "https://sthost01.blob.core.windows.net"
    assert storage_connection_string(host).blob_service_uri == "https://sthost01.blob.core.windows.net"
    assert storage_connection_string({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}) == "UseDevelopmentStorage=true"
    with pytest.raises(ConfigurationError, match="ImagesStorage__accountName"):
        storage_connection_string({**host, "ImagesStorage__accountName": "Not_An_Account"})


def test_sql_connection_string_selects_mssql_python_with_the_managed_identity():
    value = substituted(SETTINGS["SqlConnectionString"])
    pairs = check_sql_connection_string(value)
    assert driver_for(value) == MSSQL_PYTHON
    assert pairs["authentication"] == "ActiveDirectoryMSI" and pairs["uid"]
    assert not {"driver", "pwd", "password", "connection timeout"} & pairs.keys()


SECRET = re.compile(r"(?i)(accountkey|password|pwd|sharedaccesskey|sharedaccesssignature|[?&]sig|"
                    r"instrumentationkey|client_?secret)\s*=|[A-Za-z0-9+/]{40,}={0,2}")


def secret_values(settings: dict[str, Any]) -> list[str]:
    """Settings whose literal text looks like a key, password, SAS or instrumentation key."""
    return [name for name, value in settings.items() if isinstance(value, str) and SECRET.search(value)]


def test_no_app_setting_holds_a_secret():
    assert secret_values(SETTINGS) == []
    dts = APP_PARSED["variables"]["durableTaskSchedulerSettings"]["value"]
    assert secret_values(dts["operator"]["operands"]["true_value"]) == []


@pytest.mark.parametrize("value", [
    "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=bm90LWEta2V5;",
    "Server=tcp:s,1433;Uid=app;Pwd=hunter2;",
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x",
    "https://st.blob.core.windows.net/c?sv=2024&sig=abcdef",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
])
def test_secret_check_flags_secret_looking_values(value):
    assert secret_values({**SETTINGS, "Injected": value}) == ["Injected"]


def test_blob_trigger_starter_is_disabled_and_reconcile_schedule_is_a_setting():
    assert SETTINGS["AzureWebJobs.BlobTriggerStarter.Disabled"] == "true"
    assert SETTINGS["ReconcileSchedule"] == "reconcileSchedule"  # the parameter, not a literal
    mutated = parse_text(APP.replace("'AzureWebJobs.BlobTriggerStarter.Disabled': 'true'", ""))
    assert "AzureWebJobs.BlobTriggerStarter.Disabled" not in app_settings(mutated)


def parse_text(text: str) -> dict[str, Any]:
    path = Path(__import__("tempfile").mkdtemp()) / "t.bicep"
    path.write_text(text)
    return parse(path)


def test_flex_consumption_python_313_with_2048_mb_instances():
    [plan] = RESOURCES["Microsoft.Web/serverfarms"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan["properties"]["reserved"] is True
    [site] = RESOURCES["Microsoft.Web/sites"]
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.13"}
    assert config["scaleAndConcurrency"]["instanceMemoryMB"] == 2048
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert site["identity"]["type"] == "UserAssigned"


def test_storage_sql_and_insights_accept_no_keys_or_passwords():
    accounts = RESOURCES["Microsoft.Storage/storageAccounts"]
    assert len(accounts) == 2
    for storage in accounts:
        assert storage["properties"]["allowSharedKeyAccess"] is False
        assert storage["properties"]["allowBlobPublicAccess"] is False
    [server] = RESOURCES["Microsoft.Sql/servers"]
    assert server["properties"]["administrators"]["azureADOnlyAuthentication"] is True
    assert "administratorLoginPassword" not in server["properties"]
    [insights] = RESOURCES["Microsoft.Insights/components"]
    assert insights["properties"]["DisableLocalAuth"] is True


def test_database_is_serverless_and_pauses():
    [db] = RESOURCES["Microsoft.Sql/servers/databases"]
    assert db["sku"]["name"].startswith("GP_S_") and db["properties"]["autoPauseDelay"] > 0


def role_ids_granted_to_the_app() -> set[str]:
    roles = APP_PARSED["variables"]["roles"]["value"]
    granted = set()
    for body in RESOURCES["Microsoft.Authorization/roleAssignments"]:
        props = body["properties"]
        principal = str(props["principalId"])
        if "identity" in principal:
            role = props["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
            role_key = role["operator"]["operands"]["operand_2"]
            granted.add(roles[role_key])
    return granted


def test_identity_has_the_data_roles_durable_functions_and_the_app_need():
    granted = role_ids_granted_to_the_app()
    # Storage Blob Data Owner, Queue and Table Data Contributor, Monitoring Metrics Publisher,
    # Durable Task Data Contributor (built-in role ids, as Microsoft's Durable azd templates use them).
    assert {"b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
            "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "3913510d-42f4-4e42-8a64-420c390055eb",
            "0ad04412-c4d5-4796-b79c-f76d14c8d402"} <= granted


def test_durable_task_scheduler_is_an_option_driven_by_settings_only():
    dts = APP_PARSED["variables"]["durableTaskSchedulerSettings"]["value"]["operator"]["operands"]["true_value"]
    assert dts["AzureFunctionsJobHost__extensions__durableTask__storageProvider__type"] == "azureManaged"
    assert dts["AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName"] == \
        "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
    assert "Authentication=ManagedIdentity;ClientID=" in dts["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"]
    host = __import__("json").loads((ROOT / "host.json").read_text())
    hub = host["extensions"]["durableTask"]["hubName"]
    assert APP_PARSED["variables"]["taskHubName"]["value"] == hub
    # Durable Task Scheduler allows instance ids of at most 100 characters; ours are "img-" + 64 hex.
    assert len("img-" + "0" * 64) <= 100


# --- the database protected: concurrency from its worker limit -----------------------------------

# Max concurrent workers of a serverless General Purpose Gen5 database: 75 per vCore
# (MicrosoftDocs sql-docs, azure-sql/database/resource-limits-vcore-single-databases.md).
WORKERS_PER_VCORE = 75
# Workers kept for reconciliation, status queries, migrations and people (docs/capacity.md).
DATABASE_RESERVE = 30


def database_budget_problems(app_text: str, host: dict[str, Any]) -> list[str]:
    """Instances x the most database work one instance can do at once, plus the reserve, must fit
    in the database's workers. Each Flex instance serves one scale group (durable, HTTP, or a
    single other function), so the per-instance figure is the largest of the groups' limits."""
    parsed = parse_text(app_text)
    [site] = by_type(parsed)["Microsoft.Web/sites"]
    scale = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    [db] = by_type(parsed)["Microsoft.Sql/servers/databases"]
    workers = WORKERS_PER_VCORE * db["sku"]["capacity"]
    durable = host["extensions"]["durableTask"]
    per_instance = max(durable["maxConcurrentActivityFunctions"], scale["triggers"]["http"]["perInstanceConcurrency"])
    worst = scale["maximumInstanceCount"] * per_instance + DATABASE_RESERVE
    problems = []
    if worst > workers:
        problems.append(f"{scale['maximumInstanceCount']} instances x {per_instance} + {DATABASE_RESERVE} = {worst} "
                        f"> {workers} workers")
    if not 1 <= durable["storageProvider"]["partitionCount"] <= 16:
        problems.append("partitionCount outside 1-16")
    return problems


HOST_JSON = __import__("json").loads((ROOT / "host.json").read_text())


def test_concurrency_fits_the_databases_worker_limit():
    assert database_budget_problems(APP, HOST_JSON) == []
    assert HOST_JSON["extensions"]["durableTask"]["storageProvider"]["partitionCount"] == 16


@pytest.mark.parametrize("app_text, host", [
    (APP.replace("maximumInstanceCount: 40", "maximumInstanceCount: 100"), HOST_JSON),
    (APP.replace("perInstanceConcurrency: 3", "perInstanceConcurrency: 16"), HOST_JSON),
    (APP.replace("capacity: 2\n", "capacity: 1\n"), HOST_JSON),
    (APP, {**HOST_JSON, "extensions": {**HOST_JSON["extensions"], "durableTask": {
        **HOST_JSON["extensions"]["durableTask"], "maxConcurrentActivityFunctions": 10}}}),
    (APP, {**HOST_JSON, "extensions": {**HOST_JSON["extensions"], "durableTask": {
        **HOST_JSON["extensions"]["durableTask"], "storageProvider": {"partitionCount": 32}}}}),
])
def test_budget_check_rejects_concurrency_the_database_cannot_take(app_text, host):
    assert database_budget_problems(app_text, host)


def test_durable_distributed_tracing_v2_is_on():
    tracing = HOST_JSON["extensions"]["durableTask"]["tracing"]
    assert tracing == {"distributedTracingEnabled": True, "version": "V2"}


# --- least privilege ----------------------------------------------------------------------------

ROLE_IDS = APP_PARSED["variables"]["roles"]["value"]
OPEN_TO_ALL = {"0.0.0.0/0", "0.0.0.0-255.255.255.255", "*", "::/0"}


def _accessor(value: Any) -> tuple[str, str] | None:
    """('symbol', 'property') of a parsed ``symbol.property`` expression."""
    try:
        operands = value["operator"]["operands"]
    except (KeyError, TypeError):
        return None
    return operands.get("operand_1"), operands.get("operand_2")


def _symbols(parsed: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any], str | None]]:
    """symbol -> (type, body, condition) of every resource."""
    found = {}
    for symbol, res in parsed["resources"].items():
        config, condition = res["config"], None
        if set(config) == {"condition", "config"}:
            config, condition = config["config"], config["condition"]
        found[symbol] = (res["type"], config, condition)
    return found


def least_privilege_problems(text: str) -> list[str]:
    """What infra/ grants beyond the issue's least-privilege rules, read from one app.bicep text."""
    parsed = parse_text(text)
    symbols = _symbols(parsed)
    roles = parsed["variables"]["roles"]["value"]
    problems = []
    # 1. The images: an account apart from host storage; the app reads images-input, no more.
    [container] = [s for s, (t, b, _) in symbols.items()
                   if t.endswith("/containers") and b.get("name") == "inputContainerName"]
    service = symbols[container][1]["parent"]
    images_account = symbols[service][1]["parent"]
    settings = app_settings(parsed)
    host_account = (_accessor(settings.get("AzureWebJobsStorage__accountName")) or ("?",))[0]
    if host_account == images_account:
        problems.append("images-input is in the host storage account")
    if _accessor(settings.get("ImagesStorage__accountName")) != (images_account, "name"):
        problems.append("the app is not pointed at the images account (ImagesStorage__accountName)")
    for symbol, (kind, body, _) in symbols.items():
        if kind != "Microsoft.Authorization/roleAssignments":
            continue
        props = body["properties"]
        if "identity" not in str(props["principalId"]):
            continue
        role_key = _accessor(props["roleDefinitionId"]["function"]["parameters"]["resource_name_1"])[1]
        scope = body.get("scope")
        scope_type = symbols.get(scope, ("?",))[0]
        touches_images = scope in (images_account, service, container) or (
            scope_type == "Microsoft.Storage/storageAccounts/blobServices/containers"
            and symbols[symbols[scope][1]["parent"]][1]["parent"] == images_account)
        if touches_images and (roles[role_key] != ROLE_IDS["storageBlobDataReader"] or scope != container):
            problems.append(f"{symbol}: the app gets {role_key} on {scope}, more than reading images-input")
    # 2. SQL: no Azure-wide (or any open) firewall rule; the app reaches it through a private endpoint.
    for symbol, (kind, body, _) in symbols.items():
        if kind == "Microsoft.Sql/servers/firewallRules":
            problems.append(f"{symbol}: SQL firewall rule {body.get('name')} "
                            f"({body['properties']['startIpAddress']}-{body['properties']['endIpAddress']})")
    endpoints = [b for t, b, _ in symbols.values() if t == "Microsoft.Network/privateEndpoints"
                 and any(_accessor(c["properties"]["privateLinkServiceId"]) == ("sqlServer", "id")
                         and c["properties"]["groupIds"] == ["sqlServer"]
                         for c in b["properties"]["privateLinkServiceConnections"])]
    if not endpoints:
        problems.append("no private endpoint for the SQL server")
    [site] = [b for t, b, _ in symbols.values() if t == "Microsoft.Web/sites"]
    if "/subnets/app" not in str(site["properties"].get("virtualNetworkSubnetId", "")):
        problems.append("the function app is not integrated into the virtual network")
    zones = [b["name"] for t, b, _ in symbols.values() if t == "Microsoft.Network/privateDnsZones"]
    if "privatelink${environment().suffixes.sqlServerHostname}" not in zones:
        problems.append("no privatelink DNS zone for the SQL server")
    # 3. Durable Task Scheduler admits the app's NAT address only.
    for kind, body, _ in symbols.values():
        if kind == "Microsoft.DurableTask/schedulers":
            allow = body["properties"]["ipAllowlist"]
            if not isinstance(allow, list) or set(map(str, allow)) & OPEN_TO_ALL or \
                    not all("natAddress.properties.ipAddress" in str(a) for a in allow):
                problems.append(f"scheduler ipAllowlist {allow!r} is not the app's NAT address alone")
    return problems


def test_infra_grants_no_more_than_the_app_needs():
    assert least_privilege_problems(APP) == []


BROADER_ACCESS = {
    "owner role on the images": APP.replace(
        "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)",
        "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)"),
    "reader on the whole images account": APP.replace(
        "name: guid(inputContainer.id, identity.id, roles.storageBlobDataReader)\n  scope: inputContainer",
        "name: guid(inputContainer.id, identity.id, roles.storageBlobDataReader)\n  scope: imagesStorage"),
    "images in host storage": APP.replace("resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/"
                                          "containers@2023-05-01' = {\n  parent: imagesBlobService",
                                          "resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/"
                                          "containers@2023-05-01' = {\n  parent: blobService"),
    "app not pointed at the images account": APP.replace("ImagesStorage__accountName: imagesStorage.name",
                                                          "ImagesStorage__accountName: storage.name"),
    "AllowAllWindowsAzureIps": APP.replace(
        "resource database 'Microsoft.Sql/servers/databases@2023-08-01'",
        "resource sqlAllowAzure 'Microsoft.Sql/servers/firewallRules@2023-08-01' = {\n  parent: sqlServer\n"
        "  name: 'AllowAllWindowsAzureIps'\n  properties: {\n    startIpAddress: '0.0.0.0'\n"
        "    endIpAddress: '0.0.0.0'\n  }\n}\n\nresource database 'Microsoft.Sql/servers/databases@2023-08-01'"),
    "no SQL private endpoint": APP.replace("groupIds: ['sqlServer']", "groupIds: ['sqlServerX']"),
    "no VNet integration": APP.replace("    virtualNetworkSubnetId: '${vnet.id}/subnets/app'\n", ""),
    "scheduler open to all": APP.replace("ipAllowlist: ['${natAddress.properties.ipAddress}/32']",
                                         "ipAllowlist: ['0.0.0.0/0']"),
    "scheduler open to the NAT and all": APP.replace(
        "ipAllowlist: ['${natAddress.properties.ipAddress}/32']",
        "ipAllowlist: ['${natAddress.properties.ipAddress}/32', '0.0.0.0/0']"),
}


@pytest.mark.parametrize("name", list(BROADER_ACCESS))
def test_least_privilege_check_rejects_broader_access(name):
    assert BROADER_ACCESS[name] != APP, name
    assert least_privilege_problems(BROADER_ACCESS[name])


def retention_problems(text: str) -> list[str]:
    symbols = _symbols(parse_text(text))
    policies = [(b, c) for t, b, c in symbols.values() if t == "Microsoft.DurableTask/schedulers/retentionPolicies"]
    if len(policies) != 1:
        return [f"{len(policies)} retention policies"]
    [(body, condition)] = policies
    problems = []
    if condition != "useDurableTaskScheduler" or body.get("parent") != "scheduler" or body.get("name") != "default":
        problems.append("not the scheduler's default policy, deployed with that backend")
    details = body["properties"]["retentionPolicies"]
    if [d.get("retentionPeriodInDays") for d in details] != ["historyRetentionDays"] or \
            any("orchestrationState" in d for d in details):
        problems.append(f"retention {details!r} is not HistoryRetentionDays for every terminal state")
    return problems


def test_scheduler_purges_history_after_history_retention_days():
    assert retention_problems(APP) == []
    assert SETTINGS["HistoryRetentionDays"]["function"]["parameters"] == {"value_to_convert": "historyRetentionDays"}
    main = parse(INFRA / "main.bicep")
    param = main["parameters"]["historyRetentionDays"]
    assert param["default"] == 7 and "30" in str(param["decorators"])


@pytest.mark.parametrize("broken", [
    APP.replace("retentionPolicies: [{ retentionPeriodInDays: historyRetentionDays }]",
                "retentionPolicies: [{ retentionPeriodInDays: 30 }]"),
    APP.replace("retentionPolicies: [{ retentionPeriodInDays: historyRetentionDays }]",
                "retentionPolicies: [{ retentionPeriodInDays: historyRetentionDays, orchestrationState: 'Completed' }]"),
    APP.replace("resource schedulerRetention 'Microsoft.DurableTask/schedulers/retentionPolicies@2025-11-01' = "
                "if (useDurableTaskScheduler) {", "resource schedulerRetention 'Microsoft.DurableTask/schedulers/"
                "retentionPolicies@2025-11-01' = {"),
])
def test_retention_check_rejects_broken_policies(broken):
    assert broken != APP
    assert retention_problems(broken)


def alert_problems(text: str) -> list[str]:
    parsed = parse_text(text)
    rules = [b for t, b, _ in _symbols(parsed).values() if t == "Microsoft.Insights/scheduledQueryRules"]
    if len(rules) != 1:
        return [f"{len(rules)} alert rules"]
    props = rules[0]["properties"]
    problems = []
    if [_accessor(s) for s in props["scopes"]] != [("insights", "id")]:
        problems.append("not scoped to Application Insights")
    [condition] = props["criteria"]["allOf"]
    query = parsed["variables"].get(condition["query"], {}).get("value", condition["query"])
    for needle in ('Category == "Host.Triggers.DurableTask"', 'prop__functionType == "Orchestrator"',
                   'prop__state == "Failed"'):
        if needle not in query:
            problems.append(f"query lacks {needle}")
    if (condition["operator"], condition["threshold"], condition["timeAggregation"]) != ("GreaterThan", 0, "Count"):
        problems.append("does not fire on the first failure")
    if not props["enabled"]:
        problems.append("disabled")
    return problems


def test_alert_fires_on_failed_orchestrations():
    assert alert_problems(APP) == []
    host = __import__("json").loads((ROOT / "host.json").read_text())
    # The query reads the extension's tracking events, which it logs at Information.
    assert host["logging"]["logLevel"]["Host.Triggers.DurableTask"] in ("Information", "Debug", "Trace")


@pytest.mark.parametrize("broken", [
    APP.replace('customDimensions.prop__state == "Failed"', 'customDimensions.prop__state == "Completed"'),
    APP.replace("threshold: 0", "threshold: 10"),
    APP.replace("enabled: true\n    scopes: [insights.id]", "enabled: false\n    scopes: [insights.id]"),
    APP.replace("scopes: [insights.id]", "scopes: [logs.id]"),
])
def test_alert_check_rejects_broken_rules(broken):
    assert broken != APP
    assert alert_problems(broken)


# --- the Event Grid subscription and the SQL grants the hooks create ---------------------------

def subscription_problems(body: dict[str, Any]) -> list[str]:
    props = body["properties"]
    problems = []
    if sorted(props["filter"]["includedEventTypes"]) != ["Microsoft.Storage.BlobCreated",
                                                          "Microsoft.Storage.BlobDeleted"]:
        problems.append("event types")
    if props["filter"]["subjectBeginsWith"] != "/blobServices/default/containers/images-input/blobs/":
        problems.append("container filter")
    url = props["destination"]["properties"]["endpointUrl"]
    if not re.fullmatch(r"https://[^/]+/runtime/webhooks/eventgrid\?functionName=EventGridStarter&code=.+", url):
        problems.append("endpoint")
    retry = props.get("retryPolicy", {})
    if not (1 <= retry.get("maxDeliveryAttempts", 0) <= 30 and 1 <= retry.get("eventTimeToLiveInMinutes", 0) <= 1440):
        problems.append("retry policy missing or outside Event Grid's limits")
    dead = props.get("deadLetterWithResourceIdentity", {})
    target = dead.get("deadLetterDestination", {})
    if dead.get("identity", {}).get("type") != "SystemAssigned" or target.get("endpointType") != "StorageBlob" \
            or not target.get("properties", {}).get("resourceId", "").endswith("/providers/Microsoft.Storage/"
                                                                               "storageAccounts/sthost") \
            or target["properties"].get("blobContainerName") != DEAD_LETTER_CONTAINER:
        problems.append("dead letters not sent to the host storage's container with the topic's identity")
    if "deadLetterDestination" in props:
        problems.append("dead-lettering with Event Grid's own identity (the accounts refuse shared keys)")
    return problems


# Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15, the version the hook PUTs:
# EventSubscriptionProperties, WebHookEventSubscriptionDestination(Properties),
# EventSubscriptionFilter and RetryPolicy in eventgrid/microsoft.eventgrid/2025-02-15/types.md.
# DeadLetterWithResourceIdentity, EventSubscriptionIdentity, StorageBlobDeadLetterDestination(Properties).
EVENT_SUBSCRIPTION = {"properties": {
    "destination": {"endpointType": ANY, "properties": {"endpointUrl": ANY, "maxEventsPerBatch": ANY}},
    "filter": {"includedEventTypes": ANY, "subjectBeginsWith": ANY},
    "eventDeliverySchema": ANY,
    "retryPolicy": {"maxDeliveryAttempts": ANY, "eventTimeToLiveInMinutes": ANY},
    "deadLetterWithResourceIdentity": {
        "identity": {"type": ANY, "userAssignedIdentity": ANY},
        "deadLetterDestination": {"endpointType": ANY, "properties": {"resourceId": ANY, "blobContainerName": ANY}}}}}
HOST_ACCOUNT_ID = "/subscriptions/0/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/sthost"
DEAD_LETTER_CONTAINER = APP_PARSED["variables"]["deadLetterContainerName"]["value"]


def subscription(host: str = "func-x.azurewebsites.net") -> dict[str, Any]:
    return azd_hooks.event_subscription_body(host, "k", HOST_ACCOUNT_ID, DEAD_LETTER_CONTAINER)


def test_event_subscription_sends_blob_created_and_deleted_in_images_input_to_the_starter():
    body = subscription()
    assert subscription_problems(body) == []
    assert unknown_properties(body, EVENT_SUBSCRIPTION) == []
    assert azd_hooks.API["eventgrid"] == "2025-02-15"
    [topic] = RESOURCES["Microsoft.EventGrid/systemTopics"]
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    # The topic watches the images account and its identity may write the dead-letter container.
    assert _accessor(topic["properties"]["source"]) == ("imagesStorage", "id")
    assert topic["identity"] == {"type": "SystemAssigned"}
    writer = _symbols(APP_PARSED)["topicDeadLetterWriter"][1]
    assert writer["scope"] == "deadLetterContainer" and "systemTopic" in str(writer["properties"]["principalId"])
    # The hook reads the account and container from azd's environment, i.e. main.bicep's outputs.
    main = (INFRA / "main.bicep").read_text()
    assert "output AZURE_STORAGE_ACCOUNT_ID " in main and "output AZURE_EVENTGRID_DEADLETTER_CONTAINER " in main
    hooks = (ROOT / "scripts" / "azd_hooks.py").read_text()
    assert 'require("AZURE_STORAGE_ACCOUNT_ID")' in hooks and 'require("AZURE_EVENTGRID_DEADLETTER_CONTAINER")' in hooks


@pytest.mark.parametrize("mutate", [
    lambda b: b["properties"]["filter"].update(includedEventTypes=["Microsoft.Storage.BlobCreated"]),
    lambda b: b["properties"]["filter"].update(subjectBeginsWith="/blobServices/default/containers/other/"),
    lambda b: b["properties"]["destination"]["properties"].update(
        endpointUrl="https://x/runtime/webhooks/blobs?functionName=Host.Functions.BlobTriggerStarter&code=k"),
    lambda b: b["properties"].pop("retryPolicy"),
    lambda b: b["properties"]["retryPolicy"].update(maxDeliveryAttempts=31),
    lambda b: b["properties"].pop("deadLetterWithResourceIdentity"),
    lambda b: b["properties"]["deadLetterWithResourceIdentity"]["deadLetterDestination"]["properties"].update(
        blobContainerName="images-input"),
    lambda b: b["properties"].update(deadLetterDestination=b["properties"].pop("deadLetterWithResourceIdentity")[
        "deadLetterDestination"]),
])
def test_subscription_check_rejects_wrong_filters_endpoint_retry_or_dead_letter(mutate):
    body = subscription()
    mutate(body)
    assert subscription_problems(body)


def test_sql_grants_are_valid_tsql_and_match_readme():
    """sqlglot has no grammar for CREATE USER / ALTER ROLE (it falls back to a Command), so these
    are checked by sqlfluff's T-SQL grammar alone, which is shown below to reject broken ones."""
    statements = azd_hooks.grant_sql_statements("id-abc123")
    assert statements[0].endswith("CREATE USER [id-abc123] FROM EXTERNAL PROVIDER;")
    for statement in statements:
        assert sqlfluff_problems(statement) == [], statement
    readme = (ROOT / "README.md").read_text()
    for grant in azd_hooks.RUNTIME_GRANTS:
        assert grant.format(user="[<identity name>]") in readme
    assert not any("ADD MEMBER" in s for s in statements)  # no role, so no DDL at run time


@pytest.mark.parametrize("broken", [
    "CREATE USER [id-abc123] FROM EXTERNAL;",
    "ALTER ROLE db_datareader ADD [id-abc123];",
    "IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'x' CREATE USER [x] FROM EXTERNAL PROVIDER;",
])
def test_grant_check_rejects_broken_statements(broken):
    assert sqlfluff_problems(broken)


@pytest.mark.parametrize("name", ["id-x]; DROP TABLE ImageMetadata; --", "id x", "", "-id"])
def test_grants_refuse_names_that_are_not_managed_identity_names(name):
    with pytest.raises(ValueError, match="not a managed identity name"):
        azd_hooks.grant_sql_statements(name)


def test_blocked_client_ip_is_read_from_the_sql_firewall_error():
    message = ("Cannot open server 'sql-x' requested by the login. Client with IP address '203.0.113.7' is "
               "not allowed to access the server. (40615)")
    assert azd_hooks.blocked_client_ip(message) == "203.0.113.7"
    assert azd_hooks.blocked_client_ip("Login failed for user '<token-identified principal>'. (18456)") is None


# --- azure.yaml ---------------------------------------------------------------------------------

def azure_yaml_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", str(doc.get("name", ""))):
        problems.append("name")
    service = doc.get("services", {}).get("processor", {})
    if (service.get("language"), service.get("host"), service.get("project")) != ("python", "function", "."):
        problems.append("service")
    if not (ROOT / doc.get("infra", {}).get("path", "infra") / "main.bicep").exists():
        problems.append("infra path")
    for event in ("postprovision", "postdeploy"):
        run = doc.get("hooks", {}).get(event, {}).get("posix", {}).get("run", "")
        script, *args = run.split()
        if not (ROOT / script).exists() or not args or args[0] not in ("grant-sql", "subscribe-events"):
            problems.append(f"hook {event}")
    return problems


AZURE_YAML = yaml.safe_load((ROOT / "azure.yaml").read_text())


def test_azure_yaml_names_the_service_infra_and_hooks():
    assert azure_yaml_problems(AZURE_YAML) == []
    # The service name azd deploys to is the tag on the function app.
    [site] = RESOURCES["Microsoft.Web/sites"]
    assert "processor" in str(site["tags"]) and "processor" in AZURE_YAML["services"]


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(name="Image_Indexer"),
    lambda d: d["services"]["processor"].update(host="appservice"),
    lambda d: d["hooks"]["postdeploy"]["posix"].update(run="scripts/missing.sh subscribe-events"),
    lambda d: d["hooks"]["postprovision"]["posix"].update(run="scripts/azd-hook.sh drop-database"),
])
def test_azure_yaml_check_rejects_broken_variants(mutate):
    doc = yaml.safe_load((ROOT / "azure.yaml").read_text())
    mutate(doc)
    assert azure_yaml_problems(doc)


def test_the_reconciliation_rate_limit_is_a_deployment_parameter():
    """ReconcileStartsPerSecond comes from main.bicep's parameter (default 50, at least 1), not a literal."""
    assert SETTINGS["ReconcileStartsPerSecond"]["function"]["parameters"] == {"value_to_convert": "reconcileStartsPerSecond"}
    param = parse(INFRA / "main.bicep")["parameters"]["reconcileStartsPerSecond"]
    assert param["default"] == 50 and {"type": "min_value", "argument": 1} in param["decorators"]
