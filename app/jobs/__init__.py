"""Background jobs: a registry of job kinds run by SAQ workers, with progress over Redis."""

from app.domains import Domain, Ownership

DOMAIN = Domain(
    owner=Ownership.PARENT, routes=("app.jobs.controller:JobController", "app.jobs.ws:watch_job")
)
