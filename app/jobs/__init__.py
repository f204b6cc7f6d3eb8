"""Background jobs: a registry of job kinds run by SAQ workers, with progress over Redis."""
