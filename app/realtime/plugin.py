"""Starts the pub/sub hub with the app and offers it to handlers as `hub`; keeps the
registry of open sockets (limits shared through Redis, and closing them all on shutdown)."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis

from app.config import Settings
from app.realtime.echo import echo
from app.realtime.hub import PubSubHub, create_hub_client
from app.realtime.sockets import REGISTRY_STATE_KEY, SocketLimits, SocketRegistry
from app.shutdown import drain_on_sigterm

__all__ = ["RealtimePlugin"]


class RealtimePlugin(InitPluginProtocol):
    def __init__(self, settings: Settings, redis: Redis) -> None:
        # Its own client: the hub's connection blocks on reads and is never shared with
        # request/response commands.
        self.hub = PubSubHub(create_hub_client(settings.redis_url))
        # The app's client for the socket counts, under the other limits' key prefix.
        self.sockets = SocketRegistry(
            SocketLimits(max_sockets_per_user=settings.max_sockets_per_user),
            redis,
            key_prefix=settings.limits_key_prefix,
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state[REGISTRY_STATE_KEY] = self.sockets
        app_config.dependencies["hub"] = Provide(self._provide, sync_to_thread=False)
        app_config.route_handlers.append(echo)
        # The hub connects in the background: the API starts (and serves everything that
        # does not need pub/sub) even while Redis is down.
        app_config.on_startup.append(self.hub.start)
        app_config.on_startup.append(self.sockets.slots.start)
        app_config.on_startup.append(self._drain_on_sigterm)
        app_config.on_shutdown.append(self.hub.stop)
        # Hooks stop in reverse: this gives the slots back before the Redis plugin (an
        # earlier plugin) closes the client.
        app_config.on_shutdown.append(self.sockets.slots.stop)
        return app_config

    async def _drain_on_sigterm(self) -> None:
        # A rolling restart closes every socket with 1001 before uvicorn stops.
        drain_on_sigterm(self.sockets.drain)

    def _provide(self) -> PubSubHub:
        return self.hub
