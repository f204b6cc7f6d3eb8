"""`POST /v1/me/erase`: erase everything kept about the caller, as an `erase` job.

No `from __future__ import annotations`, like app/jobs/controller.py: litestar-saq's own
`Job` in the signature namespace would otherwise win over the response schema.
"""

from litestar import Controller, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from app.auth import Caller
from app.jobs.deps import provide_job_creator
from app.jobs.schemas import Job
from app.jobs.service import JobService
from app.limits import limit_job_creation
from app.users.schemas import EraseRequest
from app.users.service import start_erasure

__all__ = ["EraseController"]


class EraseController(Controller):
    tags = ["users"]
    dependencies = {"job_creator": Provide(provide_job_creator, sync_to_thread=False)}

    @post(
        "/v1/me/erase",
        status_code=HTTP_202_ACCEPTED,
        summary="Erase all your data",
        description=(
            "Queues an `erase` job that removes everything kept about you: your children "
            "and all their data, your jobs (erase jobs' receipts stay), the projects you "
            "created without a tenant; projects in a tenant stay with it without your "
            "`sub`. `confirm` must be your own `sub` (else `400`). Follow the job like "
            "any other; its result is a receipt with counts per kind."
        ),
        guards=[limit_job_creation],
    )
    async def erase_my_data(
        self,
        caller: Caller,
        data: JSONBody[EraseRequest],
        job_creator: NamedDependency[JobService],
    ) -> Job:
        return await start_erasure(caller, data, job_creator)
