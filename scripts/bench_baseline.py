"""The yardstick for `scripts/bench`: a bare Litestar app with one GET returning static JSON.

Served by uvicorn with the same flags as the API, so the ratio of the API's throughput to
this one's says how much our middleware, auth and handlers cost, whatever the machine.
Run as `uvicorn --app-dir scripts bench_baseline:app`.
"""

from __future__ import annotations

from litestar import Litestar, get


@get("/")
async def hello() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[hello])
