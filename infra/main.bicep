// Everything `azd up` provisions, at subscription scope: one resource group and the app in it.
// Modelled on Microsoft's Flex Consumption azd templates (Azure-Samples/
// functions-quickstart-python-azd-eventgrid-blob infra/main.bicep, functions-quickstart-python-http-azd
// infra/core/host/functions-flexconsumption.bicep) without their registry modules, so that every
// resource type and API version here can be checked against the published Bicep type definitions
// (Azure/bicep-types-az generated/*; the list is in infra/README.md and tests/test_infra.py).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it makes the resource names unique.')
param environmentName string

@minLength(1)
@description('Region for every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of whoever runs azd: Entra admin of the SQL server (to create the app\'s database user) and Blob Data Contributor (to upload images).')
param principalId string = deployer().objectId

@description('User for a person running azd, ServicePrincipal for a pipeline.')
@allowed(['User', 'ServicePrincipal'])
param principalType string = 'User'

@description('Durable Functions backend: the Azure Storage provider (default) or Durable Task Scheduler.')
@allowed(['AzureStorage', 'DurableTaskScheduler'])
param durableBackend string = 'AzureStorage'

@description('NCRONTAB schedule of the ReconcileBlobs timer (six fields, UTC).')
param reconcileSchedule string = '0 30 3 * * *'

@description('Days a completed or failed orchestration\'s history is kept (purge timer; Durable Task Scheduler retention policy, at most 30 on its Consumption SKU).')
@minValue(1)
@maxValue(30)
param historyRetentionDays int = 7

@description('Orchestrations a reconciliation or re-index pass starts per second at most (ReconcileStartsPerSecond): keep it within what the task hub and the database sustain (docs/capacity.md).')
@minValue(1)
param reconcileStartsPerSecond int = 50

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    principalType: principalType
    durableBackend: durableBackend
    reconcileSchedule: reconcileSchedule
    historyRetentionDays: historyRetentionDays
    reconcileStartsPerSecond: reconcileStartsPerSecond
  }
}

// azd writes these into .azure/<env>/.env; the hooks in scripts/ read them. None is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output AZURE_FUNCTION_APP_ID string = app.outputs.functionAppId
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output AZURE_STORAGE_ACCOUNT_ID string = app.outputs.storageAccountId
output AZURE_IMAGES_STORAGE_ACCOUNT_NAME string = app.outputs.imagesStorageAccountName
output AZURE_EVENTGRID_DEADLETTER_CONTAINER string = app.outputs.deadLetterContainerName
output AZURE_EVENTGRID_SYSTEM_TOPIC_ID string = app.outputs.systemTopicId
output AZURE_SQL_SERVER_ID string = app.outputs.sqlServerId
output AZURE_SQL_SERVER_FQDN string = app.outputs.sqlServerFqdn
output AZURE_SQL_DATABASE_NAME string = app.outputs.sqlDatabaseName
output AZURE_APP_IDENTITY_NAME string = app.outputs.identityName
