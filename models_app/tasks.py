"""Background tasks (django-tasks), run by ``manage.py db_worker``."""

from django_tasks import task

from .inspection.service import inspect_artifact_by_id


@task()
def inspect_artifact(artifact_id: str) -> str:
    """Inspect one artifact's file; returns the inspection's status, or "deleted"."""
    inspection = inspect_artifact_by_id(artifact_id)
    return inspection.status if inspection is not None else "deleted"
