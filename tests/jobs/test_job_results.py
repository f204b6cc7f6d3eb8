"""Bounded job results (issue 19, finding 5): a result is kept only up to
MAX_JOB_RESULT_BYTES, and an export above it fails saying so (it used to store 2.37 MB
in its row)."""

from __future__ import annotations

import uuid

import devstack

from tests.jobs.conftest import PrivateStack, finished, start_job, wait_for_job
from tests.support.processes import running_worker

LIMIT = 4096


def test_an_export_larger_than_a_result_may_be_fails_naming_the_limit(
    stack: PrivateStack, issuer: devstack.IssuerInfo
) -> None:
    client = stack.client
    # A tenant of its own: the export holds exactly the projects made here.
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"Bearer {issuer.mint(claims={'tenant_id': tenant})}"}
    with running_worker({**stack.worker_env, "MAX_JOB_RESULT_BYTES": str(LIMIT)}):
        small = start_job(client, headers, kind="export")["job_id"]
        assert wait_for_job(client, headers, small, finished)["status"] == "complete"
        # Stored once, in the job's record: SAQ's copy in Redis holds none of it.
        assert stack.saq_job(small).result is None

        for number in range(4):  # about 2.2 KB of JSON each
            body = {"name": f"big {number}", "description": "x" * 2000}
            assert client.post("/v1/projects", json=body, headers=headers).status_code == 201
        large = start_job(client, headers, kind="export")["job_id"]
        job = wait_for_job(client, headers, large, finished)
    assert job["status"] == "failed"
    assert job["result"] is None
    assert job["error"] == (
        f"The result is larger than {LIMIT} bytes, the most a job's result may hold"
    )
    # Failed on purpose, not retried: one attempt.
    assert stack.saq_job(large).attempts == 1
