"""Starts the pub/sub hub with the app and offers it to handlers as `hub`; keeps the
registry of open sockets (their limits, and closing them all on shutdown)."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from app.config import Settings
from app.realtime.echo import echo
from app.realtime.hub import PubSubHub, create_hub_client
from app.realtime.sockets import REGISTRY_STATE_KEY, SocketLimits, SocketRegistry
from app.server import running_server, turn_off_websocket_compression
from app.shutdown import drain_on_sigterm

__all__ = ["RealtimePlugin"]


class RealtimePlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        # Its own client: the hub's connection blocks on reads and is never shared with
        # request/response commands.
        self.hub = PubSubHub(create_hub_client(settings.redis_url))
        self.sockets = SocketRegistry(
            SocketLimits(
                max_sockets_per_user=settings.max_sockets_per_user,
                max_sockets=settings.max_sockets_per_process,
            )
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state[REGISTRY_STATE_KEY] = self.sockets
        app_config.dependencies["hub"] = Provide(self._provide, sync_to_thread=False)
        app_config.route_handlers.append(echo)
        # The hub connects in the background: the API starts (and serves everything that
        # does not need pub/sub) even while Redis is down.
        app_config.on_startup.append(self.hub.start)
        app_config.on_startup.append(self._configure_server)
        app_config.on_shutdown.append(self.hub.stop)
        return app_config

    async def _configure_server(self) -> None:
        server = running_server()
        if server is not None:
            turn_off_websocket_compression(server)
            # A rolling restart closes every socket with 1001 before uvicorn stops.
            drain_on_sigterm(server, self.sockets.drain)

    def _provide(self) -> PubSubHub:
        return self.hub
