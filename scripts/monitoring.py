"""The CloudWatch dashboard, alarms, Contributor Insights rules and saved Logs Insights queries, as data built by functions.

The post-deploy script sends these through boto3 and the Terraform package renders the same
data, so both ways of deploying produce one dashboard and one set of alarms. They are deploy-time
definitions, kept out of the Lambda package; the metric names they read are the function's own
(chalicelib.telemetry.metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.telemetry.metrics import (
    ACCESS_LINE_MESSAGE,
    CLIENT_ERRORS,
    LATENCY,
    METRICS_NAMESPACE,
    ORDER_VALUE,
    ORDERS_PLACED,
    REQUESTS,
    SERVER_ERRORS,
    SERVICE_DIMENSION,
    TENANT_FIELD,
    THROTTLED,
    TIER_DIMENSION,
)

FIVE_XX_RATE_PERCENT = 5
P99_LATENCY_MS = 3000
PERIOD_SECONDS = 300
# The authorizer's own work is bounded well below its timeout (the JWKS fetch gives up after
# 3 s), so a run this close to the timeout means a dependency hangs and callers get 5xx.
AUTHORIZER_DURATION_PERCENT_OF_TIMEOUT = 80
# The operations the application performs on its table.
DYNAMODB_OPERATIONS = ("GetItem", "Query", "BatchGetItem", "TransactWriteItems", "PutItem", "DeleteItem")


@dataclass(frozen=True)
class Deployment:
    """What the dashboard and alarms are about: one stage of the deployed app."""

    app_name: str
    stage: str
    region: str
    table_name: str
    api_stage: str = "api"
    authorizer_names: tuple[str, ...] = ("tenant_authorizer",)
    # The authorizer's timeout as .chalice/config.json sets it (lambda_timeout of the stage,
    # or of lambda_functions.<authorizer>); the default is this project's setting.
    authorizer_timeout_seconds: int = 10
    # The X-Ray sampling rule: a share of requests, after a reservoir of this many a second.
    # X-Ray's default reservoir of 1 a second traces nearly every request of a quiet stage.
    traced_share: float = 0.05
    trace_reservoir_per_second: int = 0

    @property
    def api_name(self) -> str:
        """The REST API's name (Chalice names it after the app)."""
        return self.app_name

    @property
    def api_function(self) -> str:
        """The Lambda function that serves the routes."""
        return f"{self.app_name}-{self.stage}"

    @property
    def authorizer_functions(self) -> list[str]:
        """The Lambda functions of the stage's authorizers."""
        return [f"{self.api_function}-{name}" for name in self.authorizer_names]

    @property
    def function_names(self) -> list[str]:
        """Every Lambda function Chalice deploys for the stage."""
        return [self.api_function, *self.authorizer_functions]

    @property
    def service(self) -> str:
        """The value of the service dimension on the application's own metrics."""
        return f"{self.app_name}-{self.stage}"

    @property
    def prefix(self) -> str:
        """Prefix of the names of the stage's dashboard, alarms and queries."""
        return f"{self.app_name}-{self.stage}"

    def log_group(self, function_name: str) -> str:
        """The log group Lambda writes a function's logs to."""
        return f"/aws/lambda/{function_name}"


def _api_dimensions(deployment: Deployment) -> list[str]:
    return ["ApiName", deployment.api_name, "Stage", deployment.api_stage]


def _graph(title: str, x: int, y: int, **properties: Any) -> dict[str, Any]:
    # Every graph of the dashboard: a third of its width, one period, a time series.
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 8,
        "height": 6,
        "properties": {"title": title, "period": PERIOD_SECONDS, "view": "timeSeries", **properties},
    }


def _widget(title: str, metrics: list[list[Any]], x: int, y: int, **properties: Any) -> dict[str, Any]:
    return _graph(title, x, y, metrics=metrics, stat="Sum", **properties)


def _search(deployment: Deployment, metric: str, statistic: str, dimension: str) -> list[list[Any]]:
    # One line per tenant (or tier) that has sent traffic, without listing tenants here.
    expression = (
        f"SEARCH('{{{METRICS_NAMESPACE},{SERVICE_DIMENSION},{dimension}}} "
        f'MetricName="{metric}" {SERVICE_DIMENSION}="{deployment.service}"\', \'{statistic}\', {PERIOD_SECONDS})'
    )
    return [[{"expression": expression, "id": f"{metric.lower()}_{dimension}", "label": ""}]]


def _insights(deployment: Deployment, title: str, query: str, x: int, y: int) -> dict[str, Any]:
    sources = " | ".join(f"SOURCE '{deployment.log_group(name)}'" for name in deployment.function_names)
    return {
        "type": "log",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {"title": title, "query": f"{sources} | {query}", "region": deployment.region, "view": "table"},
    }


def _contributor_rule(
    deployment: Deployment, keys: list[str], filters: list[dict[str, Any]], value_of: str | None = None
) -> dict[str, Any]:
    # Only the API function's access lines of tenant traffic count: health and OpenAPI requests
    # carry no tenant, and every other line (errors, security events) has another message.
    contribution: dict[str, Any] = {
        "Keys": keys,
        "Filters": [
            {"Match": "$.message", "In": [ACCESS_LINE_MESSAGE]},
            {"Match": f"$.{TENANT_FIELD}", "IsPresent": True},
            *filters,
        ],
    }
    if value_of:
        contribution["ValueOf"] = value_of
    return {
        "Schema": {"Name": "CloudWatchLogRule", "Version": 1},
        "LogGroupNames": [deployment.log_group(deployment.api_function)],
        "LogFormat": "JSON",
        "Contribution": contribution,
        "AggregateOn": "Sum" if value_of else "Count",
    }


def contributor_rules(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Contributor Insights rules by name: requests, errors (by status) and time served, per tenant.

    They take the place of a custom metric per tenant per figure: a rule costs the same whether
    ten tenants send traffic or ten thousand, and its report ranks them.
    """
    tenant = f"$.{TENANT_FIELD}"
    prefix = deployment.prefix
    return {
        f"{prefix}-requests-by-tenant": _contributor_rule(deployment, [tenant], []),
        f"{prefix}-errors-by-tenant": _contributor_rule(
            deployment, [tenant, "$.status"], [{"Match": "$.status", "GreaterThan": 399}]
        ),
        f"{prefix}-time-by-tenant": _contributor_rule(deployment, [tenant], [], value_of="$.latency_ms"),
    }


def insight_rules(deployment: Deployment) -> list[dict[str, Any]]:
    """Keyword arguments for CloudWatch PutInsightRule, one dict per Contributor Insights rule."""
    return [
        {
            "RuleName": name,
            "RuleState": "ENABLED",
            "RuleDefinition": json.dumps(definition, separators=(",", ":"), sort_keys=True),
        }
        for name, definition in contributor_rules(deployment).items()
    ]


def _top_contributors(title: str, rule_name: str, x: int, y: int, region: str) -> dict[str, Any]:
    return _graph(
        title,
        x,
        y,
        insightRule={"maxContributorCount": 10, "orderBy": "Sum", "ruleName": rule_name},
        legend={"position": "right"},
        region=region,
    )


def alarm_topic_name(deployment: Deployment) -> str:
    """The SNS topic the alarms notify."""
    return f"{deployment.prefix}-alarms"


def sampling_rule(deployment: Deployment, api_id: str, partition: str = "aws") -> dict[str, Any]:
    """The X-Ray sampling rule of the API stage, sized by the stage's settings (tunable without a deploy).

    Shaped as X-Ray's CreateSamplingRule takes it; API Gateway decides sampling for the whole
    trace, so the rule matches the stage, not the functions.
    """
    stage = deployment.api_stage
    return {
        "RuleName": deployment.prefix[:32],
        "ResourceARN": f"arn:{partition}:apigateway:{deployment.region}::/restapis/{api_id}/stages/{stage}",
        "Priority": 1000,
        "FixedRate": deployment.traced_share,
        "ReservoirSize": deployment.trace_reservoir_per_second,
        # API Gateway names the traced service "{api name}/{stage}".
        "ServiceName": f"{deployment.api_name}/{stage}",
        "ServiceType": "AWS::ApiGateway::Stage",
        "Host": "*",
        "HTTPMethod": "*",
        "URLPath": "*",
        "Version": 1,
    }


def dashboard_name(deployment: Deployment) -> str:
    """The dashboard's name."""
    return deployment.prefix


def dashboard_body(deployment: Deployment) -> dict[str, Any]:
    """The dashboard: API Gateway, Lambda, DynamoDB, per-tenant traffic, and log queries."""
    prefix = deployment.prefix
    api = _api_dimensions(deployment)
    region = {"region": deployment.region}
    table = ["TableName", deployment.table_name]
    functions = deployment.function_names
    widgets = [
        _widget(
            "API requests, 4xx, 5xx",
            [["AWS/ApiGateway", "Count", *api], [".", "4XXError", *api], [".", "5XXError", *api]],
            0,
            0,
            **region,
        ),
        _widget(
            "API latency p50 / p99 (ms)",
            [["AWS/ApiGateway", "Latency", *api, {"stat": "p50"}], ["...", {"stat": "p99"}]],
            8,
            0,
            **region,
        ),
        _widget(
            "Lambda invocations",
            [["AWS/Lambda", "Invocations", "FunctionName", name] for name in functions],
            16,
            0,
            **region,
        ),
        _widget(
            "Lambda duration p99 (ms)",
            [["AWS/Lambda", "Duration", "FunctionName", name, {"stat": "p99"}] for name in functions],
            0,
            6,
            **region,
        ),
        _widget(
            # A refused token is an error of the authorizer function: only the API function's
            # errors are failures; the authorizer's trouble shows as API 5xx and its duration.
            "Lambda errors (authorizer: incl. refused tokens) and throttles",
            [["AWS/Lambda", metric, "FunctionName", name] for name in functions for metric in ("Errors", "Throttles")],
            8,
            6,
            **region,
        ),
        _widget(
            "DynamoDB consumed capacity",
            [["AWS/DynamoDB", "ConsumedReadCapacityUnits", *table], [".", "ConsumedWriteCapacityUnits", *table]],
            16,
            6,
            **region,
        ),
        _widget(
            "DynamoDB throttles and latency (ms)",
            [
                ["AWS/DynamoDB", "ThrottledRequests", *table, "Operation", operation]
                for operation in ("GetItem", "Query", "BatchGetItem", "TransactWriteItems")
            ]
            + [
                [
                    "AWS/DynamoDB",
                    "SuccessfulRequestLatency",
                    *table,
                    "Operation",
                    operation,
                    {"stat": "Average", "yAxis": "right"},
                ]
                for operation in ("GetItem", "Query", "TransactWriteItems")
            ],
            0,
            12,
            **region,
        ),
        _top_contributors("Requests per tenant (top 10)", f"{prefix}-requests-by-tenant", 8, 12, deployment.region),
        _top_contributors(
            "Errors per tenant and status, 4xx and 5xx (top 10)",
            f"{prefix}-errors-by-tenant",
            16,
            12,
            deployment.region,
        ),
        _widget("Latency per tier p99 (ms)", _search(deployment, LATENCY, "p99", TIER_DIMENSION), 0, 18, **region),
        _widget(
            "Orders placed and value per tier",
            _search(deployment, ORDERS_PLACED, "Sum", TIER_DIMENSION)
            + _search(deployment, ORDER_VALUE, "Sum", TIER_DIMENSION),
            8,
            18,
            **region,
        ),
        _widget(
            "Throttled requests per tier (in-app limiter)",
            _search(deployment, THROTTLED, "Sum", TIER_DIMENSION),
            16,
            18,
            **region,
        ),
        _top_contributors(
            "Time served per tenant, sum of latency (ms, top 10)", f"{prefix}-time-by-tenant", 0, 24, deployment.region
        ),
        _widget(
            "Requests, 4xx and 5xx per tier",
            _search(deployment, REQUESTS, "Sum", TIER_DIMENSION)
            + _search(deployment, CLIENT_ERRORS, "Sum", TIER_DIMENSION)
            + _search(deployment, SERVER_ERRORS, "Sum", TIER_DIMENSION),
            8,
            24,
            **region,
        ),
        _insights(
            deployment,
            "Top tenants by requests",
            "filter ispresent(tenant_id) and ispresent(status) | stats count(*) as requests, "
            "avg(latency_ms) as avg_ms by tenant_id | sort requests desc | limit 10",
            0,
            30,
        ),
        _insights(
            deployment,
            "Recent security events",
            "filter ispresent(security_event) | fields @timestamp, security_event, tenant_id, request_id "
            "| sort @timestamp desc | limit 50",
            12,
            30,
        ),
    ]
    return {"widgets": widgets}


def dashboard_json(deployment: Deployment) -> str:
    """The dashboard body as CloudWatch's PutDashboard takes it."""
    return json.dumps(dashboard_body(deployment), separators=(",", ":"), sort_keys=True)


def alarm_definitions(deployment: Deployment, topic_arn: str) -> list[dict[str, Any]]:
    """Keyword arguments for CloudWatch PutMetricAlarm, one dict per alarm, notifying topic_arn.

    Every refused token raises in the authorizer, which Lambda counts in that function's Errors:
    a client retrying a stale token would page on any alarm over the authorizer's errors. So the
    alarms watch the API function's errors, and the authorizer only by what hurts callers: the
    5xx the gateway answers when it fails or times out, its duration against its timeout, and
    throttles. Refusals are 4xx, which the 5xx rate leaves out of its denominator too, so a
    stream of them cannot dilute a real failure either.
    """
    api = dict(zip(["ApiName", "Stage"], [deployment.api_name, deployment.api_stage]))
    api_dimensions = [{"Name": name, "Value": value} for name, value in api.items()]
    notify = {"AlarmActions": [topic_arn], "OKActions": [topic_arn], "TreatMissingData": "notBreaching"}

    def api_metric(metric_id: str, name: str) -> dict[str, Any]:
        return {
            "Id": metric_id,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/ApiGateway", "MetricName": name, "Dimensions": api_dimensions},
                "Period": PERIOD_SECONDS,
                "Stat": "Sum",
            },
        }

    def summed(label: str, series: list[tuple[str, str, list[dict[str, str]]]]) -> list[dict[str, Any]]:
        # One alarm over several metrics: each series a hidden query, their sum the alarmed value.
        queries = [
            {
                "Id": f"m{index}",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
                    "Period": PERIOD_SECONDS,
                    "Stat": "Sum",
                },
            }
            for index, (namespace, metric, dimensions) in enumerate(series)
        ]
        total = " + ".join(f"FILL(m{index}, 0)" for index in range(len(queries)))
        return [*queries, {"Id": "total", "Expression": total, "Label": label, "ReturnData": True}]

    def function(name: str) -> list[dict[str, str]]:
        return [{"Name": "FunctionName", "Value": name}]

    functions = [("AWS/Lambda", "Throttles", function(name)) for name in deployment.function_names]
    # DynamoDB publishes ThrottledRequests per table and operation only: there is no table total.
    table = {"Name": "TableName", "Value": deployment.table_name}
    dynamodb_throttles = summed(
        "DynamoDB throttled requests",
        [
            ("AWS/DynamoDB", "ThrottledRequests", [table, {"Name": "Operation", "Value": operation}])
            for operation in DYNAMODB_OPERATIONS
        ],
    )
    timeout_ms = deployment.authorizer_timeout_seconds * 1000
    slow_ms = timeout_ms * AUTHORIZER_DURATION_PERCENT_OF_TIMEOUT // 100

    prefix = deployment.prefix
    return [
        {
            "AlarmName": f"{prefix}-api-5xx-rate",
            "AlarmDescription": (
                f"More than {FIVE_XX_RATE_PERCENT}% of the API requests not refused with a 4xx failed with "
                "5xx over 5 minutes, the authorizer's 503s (it could not decide) included. Runbook: open the "
                "dashboard, check Lambda errors and DynamoDB throttles, then the functions' logs for level "
                "ERROR (the authorizer logs 'authorizer could not decide'; Logs Insights: errors for a tenant)."
            ),
            "Metrics": [
                api_metric("errors", "5XXError"),
                api_metric("requests", "Count"),
                api_metric("refused", "4XXError"),
                {
                    "Id": "answered",
                    "Expression": "FILL(requests, 0) - FILL(refused, 0)",
                    "Label": "requests not refused with 4xx",
                    "ReturnData": False,
                },
                {
                    "Id": "rate",
                    "Expression": "IF(answered > 0, 100 * FILL(errors, 0) / answered, 0)",
                    "Label": "5xx % of requests not refused",
                    "ReturnData": True,
                },
            ],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": FIVE_XX_RATE_PERCENT,
            "EvaluationPeriods": 1,
            **notify,
        },
        {
            "AlarmName": f"{prefix}-api-p99-latency",
            "AlarmDescription": (
                f"API p99 latency above {P99_LATENCY_MS} ms for 15 minutes. Runbook: check Lambda "
                "duration and cold starts, DynamoDB latency, and the slowest-requests query."
            ),
            "Namespace": "AWS/ApiGateway",
            "MetricName": "Latency",
            "Dimensions": api_dimensions,
            "ExtendedStatistic": "p99",
            "Period": PERIOD_SECONDS,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 3,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": P99_LATENCY_MS,
            **notify,
        },
        {
            "AlarmName": f"{prefix}-lambda-throttles",
            "AlarmDescription": (
                "Lambda throttled invocations of the API or authorizer. Runbook: check the account's "
                "concurrency limit and reserved concurrency, and which tenant drives the traffic."
            ),
            "Metrics": summed("Lambda Throttles", functions),
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "EvaluationPeriods": 1,
            **notify,
        },
        {
            "AlarmName": f"{prefix}-dynamodb-throttles",
            "AlarmDescription": (
                "DynamoDB throttled requests on the table (clients got 503). Runbook: look for a hot "
                "tenant partition on the per-tenant widgets; on-demand tables throttle on sudden 2x peaks."
            ),
            "Metrics": dynamodb_throttles,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            **notify,
        },
        {
            # The name predates the authorizer's exclusion; kept so a redeploy updates the alarm in place.
            "AlarmName": f"{prefix}-lambda-errors",
            "AlarmDescription": (
                "The API function failed (unhandled error, timeout or crash; callers got 502). The "
                "authorizer is left out: every refused token counts as one of its errors. Runbook: the "
                "API function's log group, level ERROR, and the X-Ray trace of its request_id."
            ),
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": function(deployment.api_function),
            "Statistic": "Sum",
            "Period": PERIOD_SECONDS,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            **notify,
        },
        *(
            {
                "AlarmName": f"{prefix}-{name.replace('_', '-')}-duration",
                "AlarmDescription": (
                    f"The authorizer {name} ran longer than {AUTHORIZER_DURATION_PERCENT_OF_TIMEOUT}% of its "
                    f"{deployment.authorizer_timeout_seconds} s timeout: a dependency (the JWKS endpoint, the "
                    "tenant registry) hangs, and a timed-out run answers the caller 503. Runbook: the "
                    "authorizer's log group ('authorizer could not decide', 'could not refresh the JWKS'), "
                    "then the issuer's JWKS URL and DynamoDB latency."
                ),
                "Namespace": "AWS/Lambda",
                "MetricName": "Duration",
                "Dimensions": function(function_name),
                "Statistic": "Maximum",
                "Period": PERIOD_SECONDS,
                "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": slow_ms,
                **notify,
            }
            for name, function_name in zip(deployment.authorizer_names, deployment.authorizer_functions)
        ),
    ]


def saved_queries(deployment: Deployment) -> list[dict[str, Any]]:
    """Logs Insights query definitions: errors and latency for a tenant, slowest requests, security events."""
    groups = [deployment.log_group(name) for name in deployment.function_names]
    return [
        {
            "name": f"{deployment.prefix}/errors-for-a-tenant",
            "logGroupNames": groups,
            "queryString": "fields @timestamp, status, route, error_code, request_id, message "
            "| filter tenant_id = 'TENANT_ID' and status >= 400 | sort @timestamp desc | limit 100",
        },
        {
            # The rules rank the top tenants of each period; this is any one tenant's whole history.
            "name": f"{deployment.prefix}/latency-for-a-tenant",
            "logGroupNames": groups,
            "queryString": f"filter message = '{ACCESS_LINE_MESSAGE}' and tenant_id = 'TENANT_ID' "
            "| stats count(*) as requests, avg(latency_ms) as avg_ms, pct(latency_ms, 99) as p99_ms by bin(5m)",
        },
        {
            "name": f"{deployment.prefix}/slowest-requests",
            "logGroupNames": groups,
            "queryString": "fields @timestamp, tenant_id, route, status, latency_ms, request_id, xray_trace_id "
            "| filter ispresent(latency_ms) | sort latency_ms desc | limit 50",
        },
        {
            "name": f"{deployment.prefix}/security-events",
            "logGroupNames": groups,
            "queryString": "fields @timestamp, security_event, tenant_id, request_id "
            "| filter ispresent(security_event) | sort @timestamp desc | limit 100",
        },
    ]
