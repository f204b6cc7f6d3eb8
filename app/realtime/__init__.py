"""Realtime plumbing shared by the domains: the per-process Redis pub/sub hub, WebSockets."""

from app.realtime.hub import RESYNC, HubUnavailable, PubSubHub, Subscription
from app.realtime.plugin import RealtimePlugin
from app.realtime.sockets import SocketRegistry, guard_socket

__all__ = [
    "RESYNC",
    "HubUnavailable",
    "PubSubHub",
    "RealtimePlugin",
    "SocketRegistry",
    "Subscription",
    "guard_socket",
]
