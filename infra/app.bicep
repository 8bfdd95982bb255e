// The app and what it needs, in one resource group. No key, password or connection string with a
// secret is created or stored: the app reaches storage, SQL, Application Insights and (optionally)
// Durable Task Scheduler with its user-assigned managed identity.
param location string
param tags object
param resourceToken string
param principalId string
param principalType string
param durableBackend string
param reconcileSchedule string
param historyRetentionDays int
param reconcileStartsPerSecond int

var inputContainerName = 'images-input'
// Event Grid writes the events it could not deliver here (host storage, not the images account).
var deadLetterContainerName = 'eventgrid-deadletter'
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}'
var useDurableTaskScheduler = durableBackend == 'DurableTaskScheduler'
// The task hub keeps host.json's name, so switching backends changes no code.
var taskHubName = 'ImageIndexHub'

// Built-in role ids, as Microsoft's Durable Functions azd templates assign them.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

// Host storage: AzureWebJobsStorage, the deployment package, Durable Functions' Azure Storage
// provider (queues, tables, lease blobs) and the Event Grid dead-letter container. Nobody uploads here.
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
}

// The images: an account of their own, so the app's identity can be given read access to
// images-input alone while it keeps the data roles the Functions host needs on host storage.
resource imagesStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stimg${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource imagesBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: imagesStorage
  name: 'default'
}

resource inputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: imagesBlobService
  name: inputContainerName
}

// Host storage: blob (AzureWebJobsStorage, the deployment package, Durable leases, dead letters),
// queue and table (Durable Functions' Azure Storage provider), as Microsoft's templates grant them.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The images: read (get, properties, list) on images-input only; the app never writes there.
resource appImagesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(inputContainer.id, identity.id, roles.storageBlobDataReader)
  scope: inputContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The person running azd uploads test images to images-input (and nowhere else).
resource userBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(inputContainer.id, principalId, roles.storageBlobDataContributor)
  scope: inputContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    retentionInDays: 30
    sku: { name: 'PerGB2018' }
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Azure SQL Database serverless: pauses after an hour idle (storage is then the only cost).
// Entra-only authentication: no SQL login or password exists.
resource sqlServer 'Microsoft.Sql/servers@2023-08-01' = {
  name: 'sql-${resourceToken}'
  location: location
  tags: tags
  properties: {
    version: '12.0'
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: 'azd-deployer'
      sid: principalId
      tenantId: tenant().tenantId
      principalType: principalType == 'User' ? 'User' : 'Application'
    }
  }
}

// No firewall rule admits Azure's address ranges (AllowAllWindowsAzureIps would admit every
// tenant's). The app reaches the server through a private endpoint in its own virtual network;
// the public endpoint refuses every client (40615) except the address the grant-sql hook opens for
// the person running azd while it creates the database user, and closes again.
resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: 'vnet-${resourceToken}'
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: ['10.0.0.0/16'] }
    subnets: [
      {
        // Flex Consumption's virtual network integration: a subnet delegated to Microsoft.App/environments.
        name: 'app'
        properties: {
          addressPrefix: '10.0.1.0/24'
          delegations: [{ name: 'flex', properties: { serviceName: 'Microsoft.App/environments' } }]
          natGateway: useDurableTaskScheduler ? { id: natGateway.id } : null
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: '10.0.2.0/24'
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource sqlPrivateEndpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: 'pe-sql-${resourceToken}'
  location: location
  tags: tags
  properties: {
    subnet: { id: '${vnet.id}/subnets/private-endpoints' }
    privateLinkServiceConnections: [
      {
        name: 'sql'
        properties: { privateLinkServiceId: sqlServer.id, groupIds: ['sqlServer'] }
      }
    ]
  }
}

// privatelink.database.windows.net (in Azure's public cloud): the server's name resolves to the
// private endpoint's address inside the virtual network.
resource sqlDnsZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: 'privatelink${environment().suffixes.sqlServerHostname}'
  location: 'global'
  tags: tags
}

resource sqlDnsLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: sqlDnsZone
  name: 'vnet-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: vnet.id }
  }
}

resource sqlDnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: sqlPrivateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [{ name: 'sql', properties: { privateDnsZoneId: sqlDnsZone.id } }]
  }
}

// With Durable Task Scheduler the app's outbound traffic leaves through a NAT gateway, so the
// scheduler can admit that one address instead of 0.0.0.0/0.
resource natAddress 'Microsoft.Network/publicIPAddresses@2024-05-01' = if (useDurableTaskScheduler) {
  name: 'pip-nat-${resourceToken}'
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource natGateway 'Microsoft.Network/natGateways@2024-05-01' = if (useDurableTaskScheduler) {
  name: 'nat-${resourceToken}'
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [{ id: natAddress.id }]
  }
}

resource database 'Microsoft.Sql/servers/databases@2023-08-01' = {
  parent: sqlServer
  name: 'images'
  location: location
  tags: tags
  sku: {
    name: 'GP_S_Gen5'
    tier: 'GeneralPurpose'
    family: 'Gen5'
    capacity: 2
  }
  properties: {
    autoPauseDelay: 60
    minCapacity: json('0.5')
    maxSizeBytes: 34359738368
    requestedBackupStorageRedundancy: 'Local'
  }
}

// Durable Task Scheduler (optional backend): Consumption SKU, reached with the same identity.
resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = if (useDurableTaskScheduler) {
  name: 'dts-${resourceToken}'
  location: location
  tags: tags
  properties: {
    // Only the app's NAT address; add yours to open the dashboard (ipAllowlist is required).
    ipAllowlist: ['${natAddress.properties.ipAddress}/32']
    sku: { name: 'Consumption' }
  }
}

// Completed, failed, terminated and canceled instances are purged after HistoryRetentionDays
// (no orchestrationState: the policy covers every purgeable state).
resource schedulerRetention 'Microsoft.DurableTask/schedulers/retentionPolicies@2025-11-01' = if (useDurableTaskScheduler) {
  parent: scheduler
  name: 'default'
  properties: {
    retentionPolicies: [{ retentionPeriodInDays: historyRetentionDays }]
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = if (useDurableTaskScheduler) {
  parent: scheduler
  name: taskHubName
}

resource appDurableTaskContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useDurableTaskScheduler) {
  name: guid(resourceGroup().id, identity.id, roles.durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Tracking events of the Durable extension (durable-functions-diagnostics: customDimensions
// prop__functionType / prop__state), one per failed orchestrator instance.
var failedOrchestrationsQuery = 'traces | where customDimensions.Category == "Host.Triggers.DurableTask" | where customDimensions.prop__functionType == "Orchestrator" and customDimensions.prop__state == "Failed" | project timestamp, instanceId = tostring(customDimensions.prop__instanceId), functionName = tostring(customDimensions.prop__functionName)'

var durableTaskSchedulerSettings = useDurableTaskScheduler ? {
  // Microsoft's documented settings for Durable Task Scheduler with a user-assigned identity;
  // host.json itself keeps the Azure Storage provider (the local host uses it), and these
  // AzureFunctionsJobHost__ settings override its storageProvider on Azure.
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${scheduler.properties.endpoint};Authentication=ManagedIdentity;ClientID=${identity.properties.clientId}'
  TASKHUB_NAME: taskHubName
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: 'azureManaged'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
} : {}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': 'processor' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: '${vnet.id}/subnets/app'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      // Database budget (docs/capacity.md): maximumInstanceCount x per-instance concurrency
      // (host.json maxConcurrentActivityFunctions; HTTP triggers here) + a reserve <= the
      // database's workers (GP_S_Gen5_2: 150). Change them together when the database is resized.
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 40
        triggers: { http: { perInstanceConcurrency: 3 } }
      }
      runtime: {
        name: 'python'
        version: '3.13'
      }
    }
  }

  dependsOn: [
    appBlobOwner
    appQueueContributor
    appTableContributor
    appImagesReader
    sqlDnsGroup
    sqlDnsLink
  ]
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union({
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    // The images account, read by the app's own code (shared.settings.storage_connection_string).
    ImagesStorage__accountName: imagesStorage.name
    ImagesStorage__credential: 'managedidentity'
    ImagesStorage__clientId: identity.properties.clientId
    EventGridDeadLetterContainer: deadLetterContainerName
    HistoryRetentionDays: string(historyRetentionDays)
    APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
    SqlConnectionString: 'Server=tcp:${sqlServer.properties.fullyQualifiedDomainName},1433;Database=${database.name};Encrypt=yes;TrustServerCertificate=no;Authentication=ActiveDirectoryMSI;UID=${identity.properties.clientId};'
    // Flex Consumption runs no polling blob trigger: Event Grid drives EventGridStarter instead.
    'AzureWebJobs.BlobTriggerStarter.Disabled': 'true'
    ReconcileSchedule: reconcileSchedule
    ReconcileStartsPerSecond: string(reconcileStartsPerSecond)
  }, durableTaskSchedulerSettings)
}

// Blob events of the images account; scripts/azd_hooks.py subscribes EventGridStarter to it after
// `azd deploy`, when the function exists (Microsoft's Flex Event Grid sample does the same). The
// topic's own identity writes undeliverable events to the dead-letter container.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-${resourceToken}'
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: imagesStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Failed orchestrations, from the Durable extension's tracking events (category
// Host.Triggers.DurableTask, logged at Information in host.json). No platform metric counts
// orchestration outcomes, so this is a log search alert on Application Insights, every 15 minutes.
resource failedOrchestrationsAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-failed-orchestrations-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Image indexing: failed orchestrations'
    description: 'An ImageOrchestrator instance failed in the last 15 minutes; its blob has a failed row or none yet.'
    severity: 2
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: failedOrchestrationsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
  }
}

output functionAppName string = functionApp.name
output functionAppId string = functionApp.id
output storageAccountName string = storage.name
output imagesStorageAccountName string = imagesStorage.name
output imagesStorageAccountId string = imagesStorage.id
output storageAccountId string = storage.id
output deadLetterContainerName string = deadLetterContainerName
output systemTopicId string = systemTopic.id
output sqlServerId string = sqlServer.id
output sqlServerFqdn string = sqlServer.properties.fullyQualifiedDomainName
output sqlDatabaseName string = database.name
output identityName string = identity.name
