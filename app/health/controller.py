from __future__ import annotations

import msgspec
from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.docs import finished_response_is
from app.health.schemas import Liveness, Readiness
from app.health.service import ReadinessCheck

__all__ = ["HealthController"]

_LIVE_BODY = msgspec.json.encode(Liveness())
# Where the app's shared readiness check lives in its state.
_READINESS_KEY = "readiness_check"


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    # Probes are for orchestrators and load balancers, which carry no tokens.
    opt = {"exclude_from_auth": True}
    security = [{}]

    @get(
        "/",
        summary="Liveness: the process answers; touches nothing",
        responses=finished_response_is(Liveness),
    )
    async def liveness(self) -> ASGIResponse:
        # Probed often and always the same: a finished response with a body encoded
        # once skips Litestar's Response machinery (see the users controller).
        return ASGIResponse(body=_LIVE_BODY, media_type=MediaType.JSON)

    @get(
        "/ready",
        summary="Readiness: PostgreSQL and Redis answer",
        responses={
            HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
                Readiness, description="A backing service is not answering"
            )
        },
    )
    async def readiness(
        self,
        state: State,
        db_engine: NamedDependency[AsyncEngine],
        redis: NamedDependency[Redis],
    ) -> Response[Readiness]:
        # One check shared by every caller of this app, answered from a short cache.
        check: ReadinessCheck | None = state.get(_READINESS_KEY)
        if check is None:
            check = state[_READINESS_KEY] = ReadinessCheck(db_engine, redis)
        checks = await check.checks()
        ready = all(value == "ok" for value in checks.values())
        return Response(
            Readiness(status="ok" if ready else "unavailable", checks=checks),
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )
