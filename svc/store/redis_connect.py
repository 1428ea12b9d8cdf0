"""Connecting the Redis job store: one server, or a Redis Cluster, told apart by asking.

`connect(url)` opens a plain client on the URL; if that node answers that it is part of a
cluster (``INFO cluster``: ``cluster_enabled:1``), it is replaced by a
`redis.asyncio.RedisCluster` seeded from that node, which learns the rest of the cluster
and follows slot moves. So any node's URL works, and standalone URLs keep their client.

Both clients time out connecting and each socket read after `timeout`, retry a dropped
connection once at once (a restarted server: the pooled socket is dead, a new one
works) and never a timeout (see `svc.store.redis` on outages).
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

log = logging.getLogger(__name__)

Client = aioredis.Redis | RedisCluster


def _retry() -> Retry:
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


async def connect(url: str, *, timeout: float, health_check_interval: int) -> Client:
    """A client for `url`: a `RedisCluster` when the server is a cluster node."""

    def options() -> dict[str, Any]:  # a client of each kind gets its own retry object
        return {
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "retry": _retry(),
            "health_check_interval": health_check_interval,
        }

    plain = aioredis.Redis.from_url(url, **options())
    try:
        info = await plain.info("cluster")
    except BaseException:
        await plain.aclose()
        raise
    if not info.get("cluster_enabled"):
        return plain
    await plain.aclose()
    cluster = RedisCluster.from_url(url, **options())
    try:
        await cluster.initialize()
    except BaseException:
        await cluster.aclose()
        raise
    log.info("redis job store: %s is a cluster node; using the cluster", url)
    return cluster
