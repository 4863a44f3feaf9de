"""Every name that crosses a boundary of broker-tier, defined once.

The CDK app writes these names (stack names, outputs, container variables and secrets); the
Celery settings package in the image, ``broker-tier-ops``, the replacement guard and the tests
read them. Change one here and every side changes with it, or a test fails.

Standard library only: this package ships in the worker image (it sits in ``worker/``, the
image's build context, and the Dockerfile copies it), where aws-cdk is not installed. The
project's own virtual environment installs it beside ``broker_tier`` (``pyproject.toml``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

PROJECT = "broker-tier"

# -- stacks ------------------------------------------------------------------------------------
STATE, COMPUTE, MONITORING = "State", "Compute", "Monitoring"
STACK_PARTS: tuple[str, ...] = (STATE, COMPUTE, MONITORING)
"""The stacks of one environment, in deployment order."""


def stack_name(environment: str, part: str) -> str:
    """``BrokerTier-<environment>-<part>``, the CloudFormation stack name."""
    if part not in STACK_PARTS:
        raise ValueError(f"unknown stack part {part!r}; parts: {', '.join(STACK_PARTS)}")
    return f"BrokerTier-{environment}-{part}"


_STACK_NAME = re.compile(r"^BrokerTier-(?P<environment>[a-z][a-z0-9]*)-(?P<part>[A-Za-z]+)$")


def parse_stack_name(name: str) -> tuple[str, str] | None:
    """``(environment, part)`` of a tier stack name, or None for any other name."""
    match = _STACK_NAME.match(name)
    if not match or match["part"] not in STACK_PARTS:
        return None
    return match["environment"], match["part"]


# -- physical names of the tier's resources ----------------------------------------------------
def resource_prefix(environment: str) -> str:
    """Prefix of every physical name of an environment: ``broker-tier-<environment>``."""
    return f"{PROJECT}-{environment}"


def default_replication_group_id(environment: str) -> str:
    return resource_prefix(environment)


def queue_name(environment: str, class_name: str) -> str:
    return f"{resource_prefix(environment)}-{class_name}"


def dead_letter_queue_name(environment: str, class_name: str) -> str:
    return f"{queue_name(environment, class_name)}-dlq"


def auth_token_secret_name(environment: str) -> str:
    return f"{resource_prefix(environment)}/redis-auth-token"


def claim_check_bucket_name(environment: str, account: str, region: str) -> str:
    """``broker-tier-<environment>-payloads-<account>-<region>``: the claim check's S3 bucket (names are global;
    the account and region keep the name the tier's own, and at most 61 characters)."""
    return f"{resource_prefix(environment)}-payloads-{account}-{region}"


def claim_check_key_prefix(class_name: str) -> str:
    """Where the payloads of a class's messages are kept in the claim-check bucket: ``<class>/`` (the class's
    workers may read and delete there only)."""
    return f"{class_name}/"


def service_log_group_name(environment: str, process: str) -> str:
    """Log group of a Celery process type: ``worker-<class>`` or ``beat``."""
    return f"/{resource_prefix(environment)}/celery/{process}"


def operator_log_group_name(environment: str) -> str:
    """Log group of the operators' way in: ECS Exec session logs and the toolbox task's output."""
    return f"/{resource_prefix(environment)}/operator"


def worker_process(class_name: str) -> str:
    return f"worker-{class_name}"


WORKER_EVENT_OPTIONS = ("--without-heartbeat", "--without-gossip", "--without-mingle")
"""``celery worker`` options of every worker (the task definitions and the tests' workers): no worker events and no
start-up sync. With the Redis broker Celery publishes its worker-heartbeat events from the event loop with
unlimited retries, holding it (the broker's silent-node check, the SIGTERM hand-back) for a whole outage; gossip
consumes those events and mingle asks the other workers for revoked tasks at start; the tier uses none of them
(docs/decisions/worker-without-events.md)."""


BEAT_PROCESS = "beat"


def alarm_name(environment: str, alarm: str) -> str:
    """``broker-tier-<environment>-<alarm>`` (the alarm catalogue's names are the suffixes)."""
    return f"{alarm_name_prefix(environment)}{alarm}"


def alarm_name_prefix(environment: str) -> str:
    return f"{resource_prefix(environment)}-"


REPLICATION_LAG_ALARM = "redis-replication-lag"
"""Suffix of the replication-lag alarm: its threshold is the failover drill's default lag limit."""
REDIS_CONNECTIONS_ALARM = "redis-connections"
"""Suffix of the alarm on the busiest node's connections."""
FAULT_INJECTION_STOP_ALARM = "fault-injection-stop"
"""Suffix of the composite alarm that stops the tier's AWS FIS experiments."""
EXPECTED_DURING_AZ_POWER = frozenset({REPLICATION_LAG_ALARM, REDIS_CONNECTIONS_ALARM})
"""Alarms an AZ power interruption of the cache is expected to set off: the nodes of the powered-off AZ
stop replicating and resynchronize afterwards (lag), and every client reconnects to the new primary
(connections). They neither stop the experiment nor fail the drill."""


# -- AWS FIS: the AZ power interruption experiment ----------------------------------------------
FAULT_INJECTION_TARGET_TAG = "broker-tier:fault-injection-target"
"""Tag on the replication group (value: its id) by which the FIS experiment selects it: the
ElastiCache AZ power action selects replication groups by tag only."""
AZ_POWER_ACTION = "aws:elasticache:replicationgroup-interrupt-az-power"
AZ_POWER_TARGET = "ReplicationGroups"
"""Name of the experiment template's target (and the action's target key)."""
AZ_POWER_ZONE_PARAMETER = "availabilityZoneIdentifier"


# -- stack outputs -----------------------------------------------------------------------------
class StateOutputs:
    """Outputs of ``BrokerTier-<env>-State`` (plus the per-class queue outputs below)."""

    REPLICATION_GROUP_ID = "ReplicationGroupId"
    PRIMARY_ENDPOINT_ADDRESS = "PrimaryEndpointAddress"
    READER_ENDPOINT_ADDRESS = "ReaderEndpointAddress"
    REDIS_PORT = "RedisPort"
    AUTH_TOKEN_SECRET_ARN = "AuthTokenSecretArn"
    EVENTS_TOPIC_ARN = "EventsTopicArn"
    REDIS_DATABASES = "RedisDatabases"
    """``cache=0,broker=1,results=2``: the logical database layout."""
    CLAIM_CHECK_BUCKET_NAME = "ClaimCheckBucketName"
    """The S3 bucket that carries task messages too big for SQS (a producer sets ``BROKER_TIER_CLAIM_CHECK_BUCKET``
    to it, with ``BROKER_TIER_CLAIM_CHECK_THRESHOLD``, when ``claim_check.enabled`` is on)."""


class ProducerOutputs:
    """Outputs of ``BrokerTier-<env>-State`` for an application outside the tier that publishes tasks."""

    POLICY_ARN = "ProducerPolicyArn"
    """The customer-managed policy that sends to the work queues (a producer's task role)."""
    AUTH_TOKEN_POLICY_ARN = "ProducerAuthTokenPolicyArn"
    """The customer-managed policy that reads the AUTH token (the role that reads it: ECS's execution role)."""
    SECURITY_GROUP_ID = "ProducerSecurityGroupId"
    """The security group a producer's tasks join to reach the cache."""
    SUBNET_IDS = "ProducerSubnetIds"
    """Comma-separated private subnets of the tier's VPC a producer's tasks can run in."""


class ComputeOutputs:
    """Outputs of ``BrokerTier-<env>-Compute`` (plus ``worker_service_output_id`` per class)."""

    CLUSTER_NAME = "ClusterName"
    BEAT_SERVICE_NAME = "BeatServiceName"
    BROKER = "Broker"
    """``sqs`` or ``redis``: the broker the deployed workers consume."""
    TOOLBOX_TASK_DEFINITION_ARN = "ToolboxTaskDefinitionArn"
    TOOLBOX_SECURITY_GROUP_ID = "ToolboxSecurityGroupId"
    TOOLBOX_SUBNET_IDS = "ToolboxSubnetIds"
    """Comma-separated private subnets the toolbox task runs in."""
    OPERATOR_LOG_GROUP_NAME = "OperatorLogGroupName"


class MonitoringOutputs:
    """Outputs of ``BrokerTier-<env>-Monitoring``."""

    ALARM_TOPIC_ARN = "AlarmTopicArn"
    ALARM_NAME_PREFIX = "AlarmNamePrefix"
    DASHBOARD_NAME = "DashboardName"
    AZ_POWER_EXPERIMENT_TEMPLATE_IDS = "AzPowerExperimentTemplateIds"
    """Comma-separated ids of the AZ power experiment templates, one per AZ (only when enabled)."""


QueueKind = Literal["Queue", "DeadLetterQueue"]
QueueAttribute = Literal["Name", "Url", "Arn"]
QUEUE_KINDS: tuple[QueueKind, ...] = ("Queue", "DeadLetterQueue")
QUEUE_ATTRIBUTES: tuple[QueueAttribute, ...] = ("Name", "Url", "Arn")
CLASS_NAME_PATTERN = r"[a-z][a-z0-9]{0,19}"
"""A latency class name: 1-20 lowercase letters and digits, starting with a letter."""


def _title(class_name: str) -> str:
    return class_name[:1].upper() + class_name[1:]


def queue_output_id(kind: QueueKind, class_name: str, attribute: QueueAttribute) -> str:
    """``Queue<Class><Attribute>`` or ``DeadLetterQueue<Class><Attribute>``, e.g. ``QueueBatchUrl``."""
    return f"{kind}{_title(class_name)}{attribute}"


_QUEUE_OUTPUT = re.compile(r"^(?P<kind>Queue|DeadLetterQueue)(?P<cls>[A-Z][a-z0-9]*)(?P<attr>Name|Url|Arn)$")


def parse_queue_output_id(output_id: str) -> tuple[QueueKind, str, QueueAttribute] | None:
    """``(kind, class name, attribute)`` of a queue output id, or None for any other output."""
    match = _QUEUE_OUTPUT.match(output_id)
    if not match:
        return None
    return match["kind"], match["cls"].lower(), match["attr"]  # type: ignore[return-value]


def worker_service_output_id(class_name: str) -> str:
    """``WorkerService<Class>Name``: the ECS service of a class's workers."""
    return f"WorkerService{_title(class_name)}Name"


_WORKER_SERVICE_OUTPUT = re.compile(r"^WorkerService(?P<cls>[A-Z][a-z0-9]*)Name$")


def parse_worker_service_output_id(output_id: str) -> str | None:
    """The class name of a ``WorkerService<Class>Name`` output id, or None."""
    match = _WORKER_SERVICE_OUTPUT.match(output_id)
    return match["cls"].lower() if match else None


def format_databases(layout: dict[str, int]) -> str:
    return ",".join(f"{role}={number}" for role, number in layout.items())


def parse_databases(value: str) -> dict[str, int]:
    return {role: int(number) for role, _, number in (item.partition("=") for item in value.split(",") if item)}


# -- what a container is given -----------------------------------------------------------------
# Fargate's ceiling for the SIGTERM -> SIGKILL window, and the stack's default.
MAX_STOP_TIMEOUT_SECONDS = 120
DEFAULT_STOP_TIMEOUT_SECONDS = 120
# Seconds of the stop timeout kept back from Celery's soft shutdown for the cold shutdown after it.
COLD_SHUTDOWN_SECONDS = 15


def soft_shutdown_seconds(stop_timeout_seconds: int) -> int:
    """Celery's ``worker_soft_shutdown_timeout`` for an ECS stop timeout."""
    return stop_timeout_seconds - COLD_SHUTDOWN_SECONDS


@dataclass(frozen=True)
class Variable:
    """One container environment variable (or ECS secret) the stack sets and the settings package reads."""

    name: str
    meaning: str
    default: str | None = None
    """What the settings package assumes when the variable is absent; None: required."""
    secret: bool = False
    """Injected by ECS from Secrets Manager, never a plain environment variable."""
    set_by_stack: bool = True
    """False for variables only local runs set (tests, the rehearsal)."""
    only_with: str | None = None
    """The configuration under which the stack sets the variable (e.g. ``claim_check.enabled``); None: always."""


class ContainerEnvironment:
    """The variables of every worker and Beat container, by attribute."""

    BROKER = Variable("BROKER_TIER_BROKER", "Celery broker: 'sqs' or 'redis'", "sqs")
    REGION = Variable("BROKER_TIER_REGION", "AWS region of the queues (else AWS_DEFAULT_REGION / AWS_REGION)", None)
    QUEUE_URLS = Variable("BROKER_TIER_QUEUE_URLS", "JSON object: each latency class's queue URL")
    QUEUE = Variable("BROKER_TIER_QUEUE", "the class this worker consumes (workers only; Beat has none)", None)
    ENVIRONMENT = Variable(
        "BROKER_TIER_ENVIRONMENT",
        "the tier's environment name, e.g. prod (the dimension of the Redis broker's backlog metrics)",
        None,
    )
    REDIS_HOST = Variable("BROKER_TIER_REDIS_HOST", "the replication group's primary endpoint")
    REDIS_PORT = Variable("BROKER_TIER_REDIS_PORT", "the replication group's port")
    REDIS_TLS = Variable("BROKER_TIER_REDIS_TLS", "'true': TLS to Redis (the stack always sets true)", "true")
    REDIS_DB_RESULTS = Variable("BROKER_TIER_REDIS_DB_RESULTS", "database number of the result backend", "2")
    REDIS_DB_BROKER = Variable("BROKER_TIER_REDIS_DB_BROKER", "database number of the broker (redis mode)", "1")
    TASK_TIME_LIMIT = Variable(
        "BROKER_TIER_TASK_TIME_LIMIT", "the class's hard task time limit in seconds (workers only)", None
    )
    VISIBILITY_TIMEOUT = Variable(
        "BROKER_TIER_VISIBILITY_TIMEOUT",
        "seconds a received message may stay un-acked before it is handed out again: the class's "
        "visibility_timeout_seconds (at least time limit + longest ETA + 60 s). With SQS the queue's own "
        "attribute; with the Redis broker kombu's visibility_timeout (workers only)",
        None,
    )
    RESULT_EXPIRES = Variable("BROKER_TIER_RESULT_EXPIRES", "seconds a task result is kept in Redis", "86400")
    SOFT_SHUTDOWN_TIMEOUT = Variable(
        "BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT",
        "seconds of Celery's soft shutdown after SIGTERM (the stop timeout less the cold shutdown)",
        str(soft_shutdown_seconds(DEFAULT_STOP_TIMEOUT_SECONDS)),
    )
    REMAP_SIGTERM = Variable("REMAP_SIGTERM", "Celery 5.5+: SIGTERM starts the soft shutdown", "SIGQUIT")
    REDIS_AUTH_TOKEN = Variable(
        "BROKER_TIER_REDIS_AUTH_TOKEN", "the Redis AUTH token, from its secret", None, secret=True
    )
    SQS_ENDPOINT_URL = Variable(
        "BROKER_TIER_SQS_ENDPOINT_URL", "a local SQS endpoint (tests, rehearsal)", None, set_by_stack=False
    )
    CLAIM_CHECK_BUCKET = Variable(
        "BROKER_TIER_CLAIM_CHECK_BUCKET",
        "the claim check's S3 bucket: a task message over the threshold is put there and the SQS message refers to "
        "it; a worker reads the payload back and deletes it once the task succeeds (sqs broker mode only). Absent: "
        "a message over the queue's limit fails at apply_async, naming its size",
        None,
        only_with="claim_check.enabled",
    )
    CLAIM_CHECK_THRESHOLD = Variable(
        "BROKER_TIER_CLAIM_CHECK_THRESHOLD",
        "size in bytes of the SQS message as sent (kombu's envelope, base64-encoded) above which its payload goes "
        "to the claim-check bucket (with BROKER_TIER_CLAIM_CHECK_BUCKET only)",
        str(262_144),
        only_with="claim_check.enabled",
    )
    S3_ENDPOINT_URL = Variable(
        "BROKER_TIER_S3_ENDPOINT_URL", "a local S3 endpoint for the claim check (tests)", None, set_by_stack=False
    )
    ECS_AGENT_URI = Variable(
        "ECS_AGENT_URI",
        "the ECS agent's endpoint inside a task (set by ECS itself on "
        "Fargate); absent: not on ECS, scale-in protection does nothing",
        None,
        set_by_stack=False,
    )
    PROTECTION_RENEW_SECONDS = Variable(
        "BROKER_TIER_PROTECTION_RENEW_SECONDS",
        "seconds between renewals of the task's scale-in protection while work is in progress (tests shorten it)",
        str(300),
        set_by_stack=False,
    )
    HEARTBEAT_DIR = Variable(
        "BROKER_TIER_HEARTBEAT_DIR",
        "the directory where a worker or Beat records its heartbeat for the container health check (tests move it)",
        "/tmp/broker-tier-heartbeat",
        set_by_stack=False,
    )
    VISIBILITY_TIMEOUTS = Variable(
        "BROKER_TIER_VISIBILITY_TIMEOUTS",
        "JSON object: each class's visibility_timeout_seconds (Beat only, redis mode: a message in a class's unacked "
        "record for longer is overdue)",
        None,
    )
    BEAT_FENCE_TABLE = Variable(
        "BROKER_TIER_BEAT_FENCE_TABLE",
        "the DynamoDB table in which Beat claims each due tick before it publishes it (Beat only); absent: no "
        "fence, every Beat publishes every tick",
        None,
    )
    HEARTBEAT_STALE_SECONDS = Variable(
        "BROKER_TIER_HEARTBEAT_STALE_SECONDS",
        "age in seconds past which the health check calls a heartbeat stale (tests shorten it)",
        "60",
        set_by_stack=False,
    )

    @classmethod
    def all(cls) -> tuple[Variable, ...]:
        return tuple(value for value in vars(cls).values() if isinstance(value, Variable))


# -- container health checks (ECS HealthCheck; docs/decisions/container-health-checks.md) --------------
HEARTBEAT_STALE_SECONDS = int(ContainerEnvironment.HEARTBEAT_STALE_SECONDS.default or 60)
"""A worker whose last broker round trip (or moment with every process busy) is older, or a Beat whose last tick
is, is unhealthy. A worker's longest quiet time with a live broker is one SQS long poll (5 s); a Redis failover
adds the endpoint's name moving (ElastiCache states no bound: 50 s allowed) and the seconds a worker takes to
follow it; Beat ticks at least every 10 s and a publish retry lasts about 30 s."""
HEALTH_CHECK_INTERVAL_SECONDS = 15
"""ECS runs the check this often (5-300 s): a stale process is seen within 15 s, at one cheap command each time."""
HEALTH_CHECK_TIMEOUT_SECONDS = 5
"""ECS waits this long for the command (2-60 s): it reads one file's age in milliseconds, 5 s covers a starved CPU."""
HEALTH_CHECK_RETRIES = 3
"""Consecutive failures before ECS replaces the task (1-10): one slow check never does; at most 45 s more."""
HEALTH_CHECK_START_PERIOD_SECONDS = 60
"""Failures in the first minute do not count (0-300 s): Celery's start and the first connection happen there."""


def health_check_command(process: str) -> list[str]:
    """The container health check's command, in ECS's ``CMD`` form, for a ``worker`` or ``beat`` container."""
    if process not in ("worker", BEAT_PROCESS):
        raise ValueError(f"process {process!r} is not 'worker' or {BEAT_PROCESS!r}")
    return ["CMD", "python", "-m", "broker_tier_celery.health", process]


TOOLBOX_CONTAINER = "toolbox"
"""The container of the operators' toolbox task (``aws ecs execute-command --container``)."""
TOOLBOX_LIFETIME_SECONDS = 3600
"""The toolbox task stops by itself after this long (its command is ``sleep``)."""


class ToolboxEnvironment:
    """The variables of the operators' toolbox container (redis-cli reads ``REDISCLI_AUTH`` itself, so the
    token never appears on a command line or in a session log)."""

    REDIS_HOST = ContainerEnvironment.REDIS_HOST
    REDIS_PORT = ContainerEnvironment.REDIS_PORT
    REDIS_CLI_AUTH = Variable(
        "REDISCLI_AUTH", "the Redis AUTH token, from its secret, for redis-cli", None, secret=True
    )


# -- the Redis broker's work, as CloudWatch sees it ---------------------------------------------
def redis_unacked_keys(class_name: str) -> dict[str, str]:
    """kombu's Redis transport options naming a class's own record of messages in progress, so a worker
    restores only its class's messages (docs/decisions/per-class-unacked-records.md)."""
    return {
        "unacked_key": f"unacked:{class_name}",
        "unacked_index_key": f"unacked_index:{class_name}",
        "unacked_mutex_key": f"unacked_mutex:{class_name}",
    }


REDIS_BACKLOG_NAMESPACE = "BrokerTier/RedisBroker"
"""CloudWatch namespace of the Redis broker's backlog, which Beat publishes every minute in redis mode
(SQS publishes its own queue metrics; Redis has none per list)."""
REDIS_BACKLOG_WAITING = "MessagesWaiting"
"""Messages queued in the class's Redis lists (every priority), the counterpart of SQS's visible messages."""
REDIS_BACKLOG_IN_PROGRESS = "MessagesInProgress"
"""Messages in the class's unacked record (received, not yet acknowledged), the counterpart of SQS's
in-flight messages."""
REDIS_OLDEST_MESSAGE_AGE = "OldestMessageAge"
"""Seconds since the oldest message waiting in the class's lists (every priority) was published (the settings
package stamps ``PUBLISHED_AT_HEADER``; a message without it is aged from Beat's first sight of it); 0 when none
waits. The counterpart of SQS's ``ApproximateAgeOfOldestMessage``."""
REDIS_MESSAGES_OVERDUE = "MessagesOverdue"
"""Messages in the class's unacked record for longer than the class's visibility time-out: neither acknowledged
nor handed out again (no worker of the class restores them)."""
REDIS_BACKLOG_DIMENSIONS = ("Environment", "QueueClass")
REDIS_BACKLOG_PERIOD_SECONDS = 60
PUBLISHED_AT_HEADER = "broker_tier_published_at"
"""Message header: Unix time at which the settings package published the task (``before_task_publish``)."""


# -- Beat's fence: each due tick of each schedule entry published at most once ------------------
def beat_fence_table_name(environment: str) -> str:
    return f"{resource_prefix(environment)}-beat-fence"


BEAT_FENCE_KEY = "tick"
"""The fence table's partition key: ``<entry name>@<canonical tick time, ISO 8601 UTC>``."""
BEAT_FENCE_ATTRIBUTES = ("tick", "outcome", "owner", "claimed_at", "expires_at")
"""Every attribute Beat writes (its task role may write no other)."""
BEAT_FENCE_TTL_ATTRIBUTE = "expires_at"
TICK_HEADER = "broker_tier_tick"
"""Message header of a task Beat published: the tick's fence key, so a ledger can count publications per tick."""
BEAT_NAMESPACE = "BrokerTier/Beat"
"""CloudWatch namespace of Beat's tick counts (dimension ``Environment``), published every
``REDIS_BACKLOG_PERIOD_SECONDS`` in either broker mode."""
BEAT_TICKS_PUBLISHED = "TicksPublished"
"""Due ticks this Beat claimed and published."""
BEAT_TICKS_FENCED_OFF = "TicksFencedOff"
"""Due ticks another Beat had claimed first: a duplicate prevented, and a sign that two Beats run."""
BEAT_TICKS_SKIPPED = "TicksSkipped"
"""Due ticks not published: the fence could not be written, or the publish failed after the claim."""
BEAT_TICKS_MISSED = "TicksMissed"
"""Ticks that fell due while Beat was busy or stalled and that no Beat had claimed (claimed as missed)."""
BEAT_TICK_METRICS = (BEAT_TICKS_PUBLISHED, BEAT_TICKS_FENCED_OFF, BEAT_TICKS_SKIPPED, BEAT_TICKS_MISSED)
BEAT_DIMENSIONS = ("Environment",)

REDIS_KEYSPACE_NAMESPACE = "BrokerTier/RedisKeyspace"
"""CloudWatch namespace of Redis's ``INFO keyspace`` per database, which Beat publishes every minute in either
broker mode (``broker-tier-ops status`` reads it: keys without a TTL fill a ``noeviction`` Redis)."""
REDIS_KEYSPACE_KEYS = "Keys"
REDIS_KEYSPACE_KEYS_WITHOUT_TTL = "KeysWithoutTtl"
"""``keys - expires`` of the database: keys that stay until deleted."""
REDIS_KEYSPACE_DIMENSIONS = ("Environment", "Database")
"""The environment name, and the database number (``0``, ``1``, ...; the layout is the State stack's
``RedisDatabases`` output)."""
REDIS_KEYSPACE_PERIOD_SECONDS = 60


# Seconds a worker's SQS receive waits for a message (kombu's wait_time_seconds). 5, not SQS's maximum of
# 20: at SIGTERM a worker hands messages back only once its own open poll has returned, so this bounds the
# hand-back time; an idle worker makes 12 receives a minute instead of 3 (the cost estimate counts them).
SQS_LONG_POLL_SECONDS = 5


# -- task messages too big for SQS (docs/decisions/claim-check-for-large-payloads.md) ------------------
SQS_MAX_MESSAGE_BYTES = 1_048_576
"""The MaximumMessageSize the stack sets on every queue: SQS's ceiling since August 2025 (256 KiB before). SQS
counts the body as sent (kombu base64-encodes its JSON envelope, whose task body is itself base64) and the
message attributes."""
DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES = int(ContainerEnvironment.CLAIM_CHECK_THRESHOLD.default or 262_144)
"""Above this size of the SQS message as sent, the claim check carries the payload through S3 (the configuration's
and the settings package's default)."""


# -- the reference worker's tasks, as drills use them -------------------------------------------
CANARY_TASK = "broker_tier.canary"
ALWAYS_FAILS_TASK = "broker_tier.always_fails"
PAYLOAD_TASK = "broker_tier.payload"
"""Returns the size and SHA-256 of its string argument (``fail=True``: then raises): the task a large payload is
sent to (the claim check's tests)."""
HOLD_TASK = "broker_tier.hold"
"""Logs a ledger line with ``phase`` ``start``, holds for the given seconds, then one with ``phase`` ``done``:
the long task that shutdown and scale-in drills interrupt."""
CANARY_LEDGER_MARKER = "broker-tier-canary"
"""Every execution of the canary logs one line: this marker, a space, then a JSON object with
``token``, ``task_id``, ``queue``, ``hostname``, ``pid`` and ``at`` (Unix time). The log, not the
Redis being failed over, is the ledger a drill counts executions in: locally the worker's output,
in AWS the worker service's CloudWatch Logs group."""


def canary_ledger_line(record: dict[str, Any]) -> str:
    return f"{CANARY_LEDGER_MARKER} {json.dumps(record, sort_keys=True)}"


def parse_canary_ledger_line(line: str) -> dict[str, Any] | None:
    """The record of a canary ledger line anywhere in ``line`` (log prefixes are ignored), or None."""
    _, marker, rest = line.partition(CANARY_LEDGER_MARKER + " ")
    if not marker:
        return None
    try:
        record = json.loads(rest.strip())
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "token" in record else None
