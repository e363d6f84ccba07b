"""The wire format between the server and its workers on the Redis queue (Dramatiq).

Both sides import this module: the server enqueues one `JobMessage` per job, a worker's actor
receives it. The message carries only what the worker needs to ask the server for the job
(id, kind, the options as `to_dict()` gives them); the video and the record stay on the server.
The Dramatiq message id IS the job id, so the reconciliation sweep can tell which jobs the
broker still holds, and a retry of the same message keeps the same id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import QueueUnavailable

log = logging.getLogger(__name__)

NAMESPACE = "chronicon"  # prefix of every Redis key the queue uses
QUEUE_NAME = "jobs"
ACTOR_NAME = "chronicon_job"
INSTALL_HINT = "pip install 'chronicon[queue]'"
# Dramatiq runs its queue maintenance (re-delivering the messages of consumers whose heartbeat
# stopped) on a random share of its commands, out of a million. Workers use 0.1 %: with ~20
# idle polls a second that is about once a minute per worker; the server also runs it on every
# sweep, so a killed worker's job comes back within the heartbeat timeout plus one sweep.
WORKER_MAINTENANCE_CHANCE = 1_000
# A message whose every attempt failed (the server unreachable for that long) goes to the
# dead-letter queue; the reconciliation sweep enqueues the job again while SQLite says queued.
MAX_RETRIES = 8


def require_dramatiq() -> None:
    """Raise QueueUnavailable (naming the pip command) when the `queue` extra is missing."""
    try:
        import dramatiq  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        raise QueueUnavailable(
            "CHRONICON_QUEUE is a Redis URL but Dramatiq and redis-py are not installed; "
            f"run: {INSTALL_HINT}") from None


@dataclass(frozen=True)
class JobMessage:
    """One job on the queue: `options` is `AnalysisOptions.to_dict()` (or the kind's own)."""

    job_id: str
    kind: str = "analyze"
    options: dict[str, Any] = field(default_factory=dict)

    def to_message(self) -> Any:
        from dramatiq import Message

        return Message(queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(self.job_id,),
                       kwargs={"kind": self.kind, "options": self.options}, options={},
                       message_id=self.job_id)


def make_broker(settings: Settings, maintenance_chance: int = WORKER_MAINTENANCE_CHANCE) -> Any:
    """A Dramatiq RedisBroker for `settings.queue`, with the job queue declared.

    Middleware is chosen, not defaulted: no TimeLimit (a long video on a slow CPU must not be
    killed at Dramatiq's 10 minutes) and no AgeLimit (a job waits as long as it has to);
    Retries re-delivers a job whose actor raised (the server was unreachable)."""
    require_dramatiq()
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import Retries, ShutdownNotifications

    # Timeouts on the client itself (a URL alone gives none): a Redis that vanishes must
    # surface as an error the caller handles, not a hung thread.
    client = redis.Redis.from_url(settings.queue, socket_timeout=10, socket_connect_timeout=5,
                                  health_check_interval=15)
    broker = RedisBroker(
        client=client, namespace=NAMESPACE,
        heartbeat_timeout=int(settings.worker_timeout * 1000),
        maintenance_chance=maintenance_chance,
        middleware=[ShutdownNotifications(),
                    Retries(max_retries=MAX_RETRIES, min_backoff=1000, max_backoff=30_000)])
    broker.declare_queue(QUEUE_NAME)
    return broker


def check_broker(broker: Any, url: str) -> None:
    """Raise QueueUnavailable naming the URL when Redis does not answer."""
    import redis

    try:
        broker.client.ping()
    except redis.RedisError as exc:
        raise QueueUnavailable(f"cannot reach Redis at {redact_url(url)} ({exc}); start "
                               "redis-server or fix CHRONICON_QUEUE") from None


def redact_url(url: str) -> str:
    """The URL without its password, for messages and /health."""
    from ..redact import mask_url

    return mask_url(url)


def enqueue(broker: Any, message: JobMessage) -> None:
    broker.enqueue(message.to_message())


def job_ids_in_broker(broker: Any) -> set[str]:
    """Every job the broker holds: waiting, delayed for a retry, or fetched and not acked yet
    (Dramatiq keeps a message's body in `<queue>.msgs` until it is acked)."""
    from dramatiq import Message

    ids: set[str] = set()
    for queue in (QUEUE_NAME, f"{QUEUE_NAME}.DQ"):
        for data in broker.client.hvals(f"{NAMESPACE}:{queue}.msgs"):
            try:
                ids.add(Message.decode(data).message_id)
            except Exception:  # noqa: BLE001 - a foreign message in our namespace is not a job
                log.warning("undecodable message in %s", queue)
    return ids


def run_maintenance(broker: Any) -> None:
    """Run Dramatiq's maintenance now: the unacked messages of consumers whose heartbeat is
    older than the heartbeat timeout (a worker killed mid-job) go back to the queue."""
    from dramatiq.common import current_millis

    broker.scripts["dispatch"](keys=[broker.namespace], args=[
        "qsize", current_millis(), QUEUE_NAME, broker.broker_id, broker.heartbeat_timeout,
        broker.dead_message_ttl, 1, broker._max_unpack_size()])


def queue_size(broker: Any) -> int:
    """Messages waiting or in flight (Dramatiq's own count)."""
    return int(broker.do_qsize(QUEUE_NAME))
