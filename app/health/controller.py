from __future__ import annotations

import asyncio

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.health.schemas import Liveness, Readiness
from app.health.service import check_database, check_redis

__all__ = ["HealthController"]

_LIVE = Liveness()


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    # Probes are for orchestrators and load balancers, which carry no tokens.
    opt = {"exclude_from_auth": True}
    security = [{}]

    @get("/", summary="Liveness: the process answers; touches nothing")
    async def liveness(self) -> Liveness:
        return _LIVE

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
        self, db_engine: NamedDependency[AsyncEngine], redis: NamedDependency[Redis]
    ) -> Response[Readiness]:
        database, redis_state = await asyncio.gather(check_database(db_engine), check_redis(redis))
        ready = database == "ok" and redis_state == "ok"
        return Response(
            Readiness(
                status="ok" if ready else "unavailable",
                checks={"database": database, "redis": redis_state},
            ),
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )
