"""The SAQ worker, cron included: `saq app.worker.settings` (or `litestar workers run`).

Both run the queue `app/jobs/plugin.py` defines: REDIS_URL, named by SAQ_QUEUE (default
"default"). The cron jobs run inside the workers (no separate scheduler process); each
fires once per queue however many workers run, because SAQ enqueues a cron job under one
fixed key.
"""

from __future__ import annotations

import asyncio

import uvloop

from app.config import ConfigError, get_worker_settings
from app.jobs.plugin import build_saq_config, worker_settings
from app.logging import configure_logging, quiet_routine_cron
from app.tracing import start_worker_tracing

__all__ = ["settings"]

try:
    # Only what the worker uses: no Keycloak settings are asked for.
    _app_settings = get_worker_settings()
except ConfigError as error:
    raise SystemExit(f"configuration error: {error}") from None
configure_logging(_app_settings.log_level)
quiet_routine_cron()
start_worker_tracing()  # after the log handler: its lines get trace ids
settings = worker_settings(build_saq_config(_app_settings))
# SAQ's CLI makes its loop with `asyncio.new_event_loop()`, which follows the policy: the
# same loop as the API's uvicorn. Worker CPU per demo job 4.3 → 3.7 ms (one pair of runs
# of 400 jobs x 5 steps, the load of `scripts/bench --jobs`, py-spy attached).
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
