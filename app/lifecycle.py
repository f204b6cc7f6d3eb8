"""Process-wide startup hooks that are not tied to one plugin."""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects() -> None:
    """Exempt what imports and wiring allocated from every later full garbage collection.

    Those objects live as long as the process; without this each full collection walks
    all of them again, which stalls every open WebSocket for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()
