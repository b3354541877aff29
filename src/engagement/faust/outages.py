"""Which failures are outages: the one split every consumer's retry policy rests on.

An outage is a dependency that is down, slow, full, moving or refusing: Redis or Kafka
unreachable, a timeout, Redis ``BUSY``/``LOADING``/``READONLY``/``OOM``/``MISCONF``, a cluster
redirect or ``TRYAGAIN``/``CLUSTERDOWN`` while the cluster moves, a permission refused, a broker
without a leader. It says nothing about the record at hand, so it is retried until it ends (nothing
is lost, nothing is set aside). Every other failure -- a bug, or data no code foresaw (a Lua script
raising on one record, a reply that does not parse) -- is the record's: it is retried a few times,
then the record alone is quarantined to the DLQ and the partition moves on (docs/operations.md §4).
"""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from redis.exceptions import (
    AskError,
    ClusterError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# error replies of a server that is busy, loading, full, read-only, moving or misconfigured
_REFUSALS = (
    "BUSY",
    "LOADING",
    "READONLY",
    "OOM",
    "MISCONF",
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MASTERDOWN",
    "NOREPLICAS",
    "NOPERM",
    "NOAUTH",
    "WRONGPASS",
)
_DOWN = (
    RedisConnectionError,  # BusyLoadingError, AuthenticationError among them
    RedisTimeoutError,
    ClusterError,  # ClusterDownError, MasterDownError
    RedisClusterException,  # cluster unreachable, slot not covered
    AskError,  # MovedError
    TryAgainError,
    ReadOnlyError,
    OutOfMemoryError,
    NoPermissionError,
    OSError,  # socket errors, ConnectionError among them
    asyncio.TimeoutError,
)
_RECORD_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` is an outage (retried until it ends) rather than the record's failure."""
    if isinstance(error, _DOWN):
        return True
    if isinstance(error, KafkaError):
        return not isinstance(error, _RECORD_TOO_LARGE)
    if isinstance(error, ResponseError):
        return str(error).split(" ", 1)[0].upper() in _REFUSALS
    return False
