"""HTTP endpoints for jobs (the progress socket is in `app/jobs/ws.py`).

No `from __future__ import annotations` here, on purpose: litestar-saq adds its own
`Job` to the app's signature namespace, which Litestar prefers over this module's names
when it resolves string annotations; real annotations keep `Job` our response schema.
"""

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_409_CONFLICT

from app.auth import Caller
from app.errors import exception_handlers
from app.jobs.deps import provide_job_service
from app.jobs.registry import KINDS
from app.jobs.schemas import Job, JobPage, JobRequest
from app.jobs.service import JobService
from app.jobs.status import JobStatus
from app.limits import limit_job_creation

__all__ = ["JobController"]

JOB_PATH = ["/v1/jobs/{job_id:str}", "/jobs/{job_id:str}"]
# Far beyond any real history, and well inside what PostgreSQL takes as an OFFSET.
MAX_OFFSET = 1_000_000_000


def _name_the_kinds(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """An unknown kind lists the known ones (msgspec says a bare "Invalid value")."""
    for item in exc.extra if isinstance(exc.extra, list) else ():
        if (
            isinstance(item, dict)
            and item.get("key") == "kind"
            and str(item.get("message", "")).startswith("Invalid")
        ):
            item["message"] = f"Unknown job kind; expected one of: {', '.join(KINDS)}"
    return exception_handlers[HTTPException](request, exc)


class JobController(Controller):
    tags = ["jobs"]
    dependencies = {"job_service": Provide(provide_job_service, sync_to_thread=False)}
    exception_handlers = {ValidationException: _name_the_kinds}

    @post(
        ["/v1/jobs", "/jobs"],
        status_code=HTTP_202_ACCEPTED,
        summary="Start a job",
        description=(
            "Queues a job of the given `kind` with its `params`; the answer is the queued "
            "job. Follow it with `GET /v1/jobs/{job_id}` or `/ws/jobs/{job_id}`. "
            "`503` when the queue (Redis) is not answering. `429` over "
            "`JOB_LIMIT_PER_MINUTE` new jobs a minute or `MAX_OPEN_JOBS_PER_USER` queued "
            "and active jobs."
        ),
        guards=[limit_job_creation],
    )
    async def create_job(
        self, caller: Caller, data: JSONBody[JobRequest], job_service: NamedDependency[JobService]
    ) -> Job:
        return await job_service.create(caller, data)

    @get(["/v1/jobs", "/jobs"], summary="The caller's recent jobs, newest first")
    async def list_jobs(
        self,
        caller: Caller,
        job_service: NamedDependency[JobService],
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
        status: Annotated[
            JobStatus | None, Parameter(description="Only jobs in this state")
        ] = None,
    ) -> JobPage:
        return await job_service.page(caller, limit=limit, offset=offset, status=status)

    @get(JOB_PATH, summary="A job's state (404 for someone else's job)")
    async def get_job(
        self, caller: Caller, job_id: FromPath[str], job_service: NamedDependency[JobService]
    ) -> Job:
        return await job_service.get(caller, job_id)

    @delete(
        JOB_PATH,
        status_code=HTTP_202_ACCEPTED,
        responses={
            HTTP_409_CONFLICT: ResponseSpec(
                None, description="The job had already finished; nothing was changed."
            )
        },
        summary="Abort a queued or active job",
        description=(
            "`202` with the job, now `aborted`: its record is final at once and its worker "
            "stops within about a second. `409` if the job had already finished."
        ),
    )
    async def abort_job(
        self, caller: Caller, job_id: FromPath[str], job_service: NamedDependency[JobService]
    ) -> Job:
        return await job_service.abort(caller, job_id)
