"""The names of the metrics and log fields the function emits, which the dashboard, alarms and rules read back.

The function writes them (chalicelib.web.middleware, chalicelib.telemetry.emf); the deploy-time definitions of the
dashboard, alarms and Contributor Insights rules (scripts.monitoring) import them from here, so
a renamed metric changes both sides at once. Only names live here: the definitions themselves
stay out of the Lambda package.
"""

# Names of the embedded-metric-format metrics the application emits (namespace, dimensions).
METRICS_NAMESPACE = "TenantApi"
SERVICE_DIMENSION = "service"
TIER_DIMENSION = "tier"
# The access line's tenant: a log field the Contributor Insights rules key on, not a metric
# dimension (each tenant would be five more billed metrics).
TENANT_FIELD = "tenant_id"
REQUESTS = "Requests"
CLIENT_ERRORS = "ClientErrors"
SERVER_ERRORS = "ServerErrors"
LATENCY = "Latency"
THROTTLED = "Throttled"
ORDERS_PLACED = "OrdersPlaced"
ORDER_VALUE = "OrderValue"
# The message of the one line the API function writes per request (access fields and metrics).
ACCESS_LINE_MESSAGE = "request"
