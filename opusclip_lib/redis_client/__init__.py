"""Redis for every layer: one URL syntax (a server or a cluster), explicit timeouts, typed errors.

::

    async with open_redis(config.redis_url()) as client:   # redis:// or redis+cluster://
        cache = RedisCache(client)                            # degrades to misses when Redis fails

The database layer and the resilience layer both import this package; it imports neither.
"""

from opusclip_lib.redis_client._connect import (
    AnyRedis,
    check_redis,
    delete_matching,
    is_cluster_url,
    open_redis,
    redis_client,
    translate,
)
from opusclip_lib.redis_client._errors import (
    NotAClusterError,
    RedisClusterDownError,
    RedisConfigurationError,
    RedisServiceError,
    RedisUnavailableError,
)
from opusclip_lib.redis_client._guard import RedisGuard, RedisSkippedError, node_of
from opusclip_lib.redis_client._timeouts import RedisTimeouts

__all__ = [
    "AnyRedis", "NotAClusterError", "RedisClusterDownError", "RedisConfigurationError",
    "RedisGuard", "RedisServiceError", "RedisSkippedError", "RedisTimeouts",
    "RedisUnavailableError", "check_redis", "delete_matching", "is_cluster_url", "node_of",
    "open_redis", "redis_client", "translate",
]
