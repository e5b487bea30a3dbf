"""Import jobs: one row per Geti optimized model being (or having been) imported.

A job lives in the database, not in a process: the web process creates it and enqueues a task,
a worker (``manage.py db_worker``) runs it and writes its progress here, and pages and the API
read it back. So a job survives a restart of either process, and its state is the same for
everyone who looks.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ImportJobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=ImportJob.ACTIVE_STATES)

    def with_related(self):
        """Everything a job list shows, in one query."""
        return self.select_related("created_by", "artifact__version__registered_model")

    def stale(self, older_than_seconds):
        """Running jobs whose worker has not reported for ``older_than_seconds``: it died."""
        cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
        return self.filter(state=ImportJob.State.RUNNING, heartbeat_at__lt=cutoff)


class ImportJob(models.Model):
    """The import of one Geti optimized model into the registry.

    ``bytes_done``/``bytes_total`` track the download (``bytes_total`` is Geti's announced length,
    unknown until the download starts). ``heartbeat_at`` moves while the worker makes progress, so
    a job whose worker was killed can be told from a slow one. ``artifact`` is the registered
    variant once done; it is also set when the model had been imported before (nothing is
    downloaded again then).
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    project_id = models.CharField(max_length=64)
    project_name = models.CharField(max_length=200, blank=True)
    group_id = models.CharField(max_length=64)
    model_id = models.CharField(max_length=64)
    optimized_model_id = models.CharField(max_length=64, db_index=True)
    # Geti's display name ("YOLOX-TINY OpenVINO FP16"), so lists need no call to Geti.
    name = models.CharField(max_length=200, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    artifact = models.ForeignKey(
        "models_app.Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The django-tasks result id, to find the worker's own record of the run.
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = ImportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Two clicks on "Import" (or two users) must not download the same model twice at once:
            # the second insert fails and the caller is handed the job already under way.
            models.UniqueConstraint(
                fields=["optimized_model_id"],
                condition=Q(state__in=["queued", "running"]),
                name="one_active_import_per_optimized_model",
            ),
            models.CheckConstraint(condition=Q(bytes_done__gte=0), name="import_bytes_done_not_negative"),
        ]

    def __str__(self):
        return f"{self.name or self.optimized_model_id} ({self.state})"

    @property
    def is_active(self):
        return self.state in self.ACTIVE_STATES

    @property
    def progress(self):
        """Percentage downloaded (0-100), or None while the size is unknown."""
        if self.state == self.State.DONE:
            return 100.0
        if not self.bytes_total:
            return None
        return round(min(100.0, 100.0 * self.bytes_done / self.bytes_total), 1)
