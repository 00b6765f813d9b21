"""The errors this project raises about Redis: typed, so no redis-py exception reaches a caller.

The caches never raise them (an outage is a logged miss); the live feed and
:func:`~opusclip_lib.redis_client.check_redis` do.
"""

from __future__ import annotations

from opusclip_lib.errors import OpusClipError, TransientError


class RedisServiceError(OpusClipError):
    """Something about the Redis server or cluster in ``OPUSCLIP_REDIS_URL``."""


class RedisConfigurationError(RedisServiceError, ValueError):
    """A Redis URL that cannot work, whatever the server does (fix the URL, do not retry)."""


class NotAClusterError(RedisConfigurationError):
    """A ``redis+cluster://`` URL that points at a Redis running without cluster mode."""


class RedisUnavailableError(RedisServiceError, TransientError, ConnectionError):
    """Redis refused, dropped or did not answer within its timeout (retrying later may help)."""


class RedisClusterDownError(RedisUnavailableError):
    """The cluster answers but reports ``cluster_state:fail`` (slots without a live owner)."""
