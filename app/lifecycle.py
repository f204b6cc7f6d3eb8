"""Process-wide startup hooks that are not tied to one plugin."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from functools import cache
from typing import Final

__all__ = ["freeze_startup_objects", "give_back_free_memory", "limit_malloc_arenas"]

logger = logging.getLogger(__name__)

# mallopt(3) parameter number of M_ARENA_MAX in glibc's malloc.h.
_M_ARENA_MAX: Final = -8
MALLOC_ARENAS: Final = 2


@cache
def _glibc() -> ctypes.CDLL | None:
    """glibc's malloc controls, or None on another C library (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas, before the process starts its threads.

    glibc gives each thread that allocates an arena of its own (up to eight per core) and
    rarely returns what is freed in one; with the log writer and executor threads beside
    the event loop, RSS crept up under load. Two arenas serve one event loop and a few
    helper threads with no measurable cost (`MALLOC_ARENA_MAX` in the environment, read
    by glibc at startup, does the same for any process).
    """
    libc = _glibc()
    if libc is not None and not libc.mallopt(_M_ARENA_MAX, arenas):
        logger.debug("mallopt(M_ARENA_MAX) was refused")


def give_back_free_memory() -> None:
    """Return the free pages malloc still holds to the operating system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def freeze_startup_objects() -> None:
    """Exempt what imports and wiring allocated from every later full garbage collection.

    Those objects live as long as the process; without this each full collection walks
    all of them again, which stalls every open WebSocket for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()
    # Imports and wiring freed a lot of what they allocated; keep none of it resident.
    give_back_free_memory()
