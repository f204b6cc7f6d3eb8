"""One shared async Redis client per process, closed on shutdown."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis

__all__ = ["RedisPlugin", "create_redis"]


def create_redis(url: str) -> Redis:
    # Short timeouts: an API request should fail fast (503) rather than hang on Redis.
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


class RedisPlugin(InitPluginProtocol):
    """Puts a client in `app.state.redis` and offers it to handlers as `redis`."""

    def __init__(self, url: str) -> None:
        self.client = create_redis(url)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state["redis"] = self.client
        app_config.dependencies["redis"] = Provide(self._provide, sync_to_thread=False)
        app_config.on_shutdown.append(self._close)
        return app_config

    def _provide(self) -> Redis:
        return self.client

    async def _close(self) -> None:
        await self.client.aclose()
