"""Background tasks (django-tasks). The database backend stores each enqueued task as a row;
``manage.py db_worker`` picks it up, so an import outlives the request that started it."""

from django_tasks import task

from . import importer


@task()
def import_geti_model(job_id: str) -> str:
    """Run one import job; returns its final state ("done" or "failed"), or "deleted"."""
    job = importer.run_import(job_id)
    return job.state if job is not None else "deleted"


@task()
def watch_geti_import(job_id: str) -> str:
    """Fail the import job if its worker stopped beating, else look again later (``importer.watch``)."""
    return importer.watch(job_id)
