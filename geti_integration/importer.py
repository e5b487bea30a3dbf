"""Browse Geti and import its optimized models into the registry.

Mapping (docs/geti.md has the full table):

- a Geti model group becomes a registered model named ``<project name>-<group name>``;
- a trained Geti model becomes a version (its Geti version number);
- each optimized model becomes an artifact (one variant: precision, format, score, size), whose
  ``external_id`` is the Geti optimized-model id. That id is the idempotence key: importing a
  model that is already in the registry finishes at once, pointing at the existing artifact,
  without downloading it again.

Rows are written only through ``models_app.services.register_artifact``, which stores the file
first, writes rows after, and removes the object if the rows cannot be written; so a failed
import leaves neither a row nor an object.
"""

from __future__ import annotations

import hashlib
import logging
import re
import stat
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from models_app import events
from models_app.errors import ArtifactStorageError, Conflict, FileTooLarge, RegistryError
from models_app.models import Artifact, AuditEntry, ModelVersion, RegisteredModel
from models_app.services import register_artifact

from .client import (
    GetiClient,
    GetiConfig,
    GetiConfigError,
    GetiError,
    Model,
    ModelGroup,
    OptimizedModel,
    Project,
)
from .errors import GetiDisabled, GetiMisconfigured, ImportFailed, describe
from .models import ImportJob

logger = logging.getLogger(__name__)

ORIGIN = "Geti"
# How often a running job writes its progress: at most once per PROGRESS_SECONDS unless another
# percent is done, and never more often than MIN_PROGRESS_SECONDS.
PROGRESS_SECONDS = 1.0
MIN_PROGRESS_SECONDS = 0.2


# --- configuration ----------------------------------------------------------------------------


def get_config() -> GetiConfig:
    """The Geti settings from the environment, read now (not at import, so they can change).

    Raises GetiDisabled when GETI_HOST is unset and GetiMisconfigured when the values are unusable.
    """
    try:
        config = GetiConfig.from_env()
    except GetiConfigError as exc:
        raise GetiMisconfigured(f"The Geti integration is misconfigured: {exc}") from exc
    if config is None:
        raise GetiDisabled()
    return config


def get_client(**kwargs) -> GetiClient:
    return GetiClient(get_config(), **kwargs)


# --- browsing ---------------------------------------------------------------------------------


def imported_artifacts(optimized_ids) -> dict[str, Artifact]:
    """Artifacts already imported for these Geti optimized-model ids, in one query."""
    ids = [i for i in optimized_ids if i]
    if not ids:
        return {}
    return {a.external_id: a for a in Artifact.objects.with_version().filter(external_id__in=ids)}


# --- mapping ----------------------------------------------------------------------------------


def registered_model_name(project_name: str, group_name: str) -> str:
    """``<project>-<group>`` as a valid registered-model name: no slashes, no control characters,
    runs of spaces made one dash ("Parking lot" + "SSD" -> "Parking-lot-SSD")."""
    name = re.sub(r"[\s/\\\x00-\x1f\x7f]+", "-", f"{project_name}-{group_name}").strip("-")
    return name[:200] or "geti-model"


def registered_model_for(project_id: str, project_name: str, group_name: str) -> str:
    """The registered model a Geti model group's versions go to: ``<project>-<group>``, or that
    name with the project id appended when it already holds versions of anything else (another
    Geti project of the same name, in another workspace say, or models registered by hand), so
    two projects' models never end up as versions or variants of one registered model. A
    project that was given the longer name keeps it."""
    name = registered_model_name(project_name, group_name)
    with_id = f"{name[: 200 - len(project_id) - 1]}-{project_id}"
    if RegisteredModel.objects.filter(name=with_id).exists():
        return with_id
    others = ModelVersion.objects.filter(registered_model__name=name).exclude(project_id=project_id)
    return with_id if others.exists() else name


def category_for(task_types: list[str]) -> str:
    """Intel's category format (``Detection``, ``Detection_Classification``) for *every* Geti task
    type: Intel's service kept only four types and crashed on ``instance_segmentation``."""
    return "_".join(task_types).title()[:100]


def precision_for(optimized: OptimizedModel) -> str:
    """One registry precision from Geti's list (``["FP16"]``): the value itself when the registry
    knows it, MIXED for several or an unknown one; an untrained list falls back to the name."""
    values = {str(v).strip().upper() for v in optimized.precision if str(v).strip()}
    if not values:
        values = {p for p in Artifact.Precision.values if re.search(rf"\b{p}\b", optimized.name.upper())}
    if not values:
        return Artifact.Precision.FP32
    if len(values) == 1 and next(iter(values)) in Artifact.Precision.values:
        return next(iter(values))
    return Artifact.Precision.MIXED


def format_for(optimized: OptimizedModel) -> str:
    """``openvino``/``onnx``; ``+xai`` marks the variant with an explainability head, which is
    another file of the same precision (Geti lists both)."""
    fmt = re.sub(r"[^a-z0-9._+-]", "", (optimized.model_format or "unknown").lower())[:27] or "unknown"
    return f"{fmt}+xai" if optimized.has_xai_head else fmt


def target_device_for(optimized: OptimizedModel) -> str:
    """Geti's (deprecated) target device when it names one, else CPU: Geti benchmarks on CPU,
    and an OpenVINO IR runs on CPU, GPU and NPU alike."""
    device = str(optimized.raw.get("target_device") or "").strip().upper()
    return device if device and device != "UNSPECIFIED" else "CPU"


def score_metric_for(project: Project, group: ModelGroup, model: Model) -> str:
    """What the score measures, where Geti says: the metric of the group's task in the project's
    performance (``f-measure``, ``accuracy``...), or the anomaly score the number was taken from."""
    performance = model.performance or {}
    if performance.get("score") is None:
        for key in ("global_score", "local_score"):
            if performance.get(key) is not None:
                return key.replace("_", " ")
    for entry in (project.raw.get("performance") or {}).get("task_performances") or []:
        if entry.get("task_id") == group.task_id:
            return str((entry.get("score") or {}).get("metric_type") or "")[:64]
    return ""


def version_fields_for(config: GetiConfig, project: Project, group: ModelGroup, model: Model) -> dict:
    """What every variant of one Geti model shares."""
    task_labels = [label for task in project.tasks if task.trainable for label in task.labels]
    return {
        "description": f"Imported from Intel Geti: project {project.name}, {group.name} version {model.version}.",
        "architecture": (model.architecture or group.name)[:200],
        "category": category_for(project.task_types),
        "labels": model.labels or task_labels,
        "score_metric": score_metric_for(project, group, model),
        "project_id": project.id[:128],
        "project_name": project.name[:200],
        "origin": ORIGIN,
        "overview": {
            "task_types": project.task_types,
            "geti": {
                "project_id": project.id,
                "project_name": project.name,
                "model_group_id": group.id,
                "model_group_name": group.name,
                "model_template_id": group.model_template_id,
                "learning_approach": group.learning_approach,
                "model_id": model.id,
                "model_version": model.version,
                "performance": model.performance,
            },
        },
        "provenance": {
            "source": "geti",
            "host": config.host,
            "project_id": project.id,
            "model_group_id": group.id,
            "model_id": model.id,
            "created": model.creation_date,
            "training_dataset": model.raw.get("training_dataset_info"),
            "training_framework": model.raw.get("training_framework"),
        },
    }


def artifact_fields_for(optimized: OptimizedModel, package: str) -> dict:
    """One variant: the optimized model's precision, format and score, keyed by its Geti id."""
    return {
        "external_id": optimized.id,
        "precision": precision_for(optimized),
        "format": format_for(optimized),
        "target_device": target_device_for(optimized),
        "target_device_type": str(optimized.raw.get("target_device_type") or "")[:64],
        "score": optimized.score,
        "optimization_capabilities": {
            "optimization_type": optimized.optimization_type,
            "optimization_methods": optimized.raw.get("optimization_methods") or [],
            "configurations": optimized.raw.get("configurations") or [],
            "precision": optimized.precision,
            "has_xai_head": optimized.has_xai_head,
            "model_status": optimized.model_status,
            "geti_name": optimized.name,
            "geti_size": optimized.size,
            "package": package,
        },
    }


# --- starting imports -------------------------------------------------------------------------


def start_imports(*, project_id: str, models: list[dict], user=None) -> list[ImportJob]:
    """Check the requested optimized models against Geti, then queue one import job per model.

    ``models`` are ``{"group_id", "optimized_model_id", "model_id"?}``; without ``model_id`` the
    base model is found through Geti. A model already being imported is not queued twice: its
    active job is returned instead. Raises GetiError (unknown project or model included).
    """
    from .tasks import import_geti_model

    with get_client() as client:
        project = client.get_project(project_id)
        details: dict[tuple[str, str], Model] = {}
        wanted: dict[str, tuple[str, str, OptimizedModel]] = {}
        for entry in models:
            group_id, optimized_id = entry["group_id"], entry["optimized_model_id"]
            model_id = (
                entry.get("model_id") or client.get_optimized_model(project_id, group_id, optimized_id).base_model_id
            )
            if not model_id:
                raise GetiError(
                    f"Geti does not say which model {optimized_id} was optimized from",
                    status=404,
                    code="model_not_found",
                )
            if (group_id, model_id) not in details:
                details[group_id, model_id] = client.get_model(project_id, group_id, model_id)
            optimized = next((o for o in details[group_id, model_id].optimized_models if o.id == optimized_id), None)
            if optimized is None:
                raise GetiError(
                    f"Model {model_id} of group {group_id} has no optimized model {optimized_id}",
                    status=404,
                    code="model_not_found",
                )
            wanted[optimized_id] = (group_id, model_id, optimized)

    jobs = []
    for optimized_id, (group_id, model_id, optimized) in wanted.items():
        try:
            # The job row and the queued task commit together: a worker never sees a task
            # whose job does not exist yet, and a failed enqueue leaves no orphan job.
            with transaction.atomic():
                job = ImportJob.objects.create(
                    project_id=project.id,
                    project_name=project.name[:200],
                    group_id=group_id,
                    model_id=model_id,
                    optimized_model_id=optimized_id,
                    name=optimized.name[:200],
                    bytes_total=optimized.size,
                    created_by=user if user and user.is_authenticated else None,
                )
                result = import_geti_model.enqueue(str(job.id))
                ImportJob.objects.filter(pk=job.pk).update(task_id=str(result.id)[:64])
        except IntegrityError:
            # Another import of this model is queued or running (the partial unique constraint).
            job = ImportJob.objects.active().filter(optimized_model_id=optimized_id).first()
            if job is None:  # it finished in between: try once more
                return start_imports(project_id=project_id, models=models, user=user)
        jobs.append(job)
    return list(ImportJob.objects.with_related().filter(pk__in=[j.pk for j in jobs]).order_by("created_at"))


# --- running an import ------------------------------------------------------------------------


class HashingWriter:
    """A file wrapper that hashes and counts what is written, and refuses to grow past ``limit``."""

    def __init__(self, fileobj, limit: int | None = None):
        self.fileobj = fileobj
        self.limit = limit
        self.reset()

    def reset(self):
        self.fileobj.seek(0)
        self.fileobj.truncate()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise FileTooLarge(self.limit)
        self.sha256.update(data)
        return self.fileobj.write(data)


class ProgressReporter:
    """The ``progress`` callback of a download: writes bytes done/total to the job now and then
    (every second, or every percent but at most five times a second), not on every chunk."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.last_saved = 0.0
        self.last_done = 0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        elapsed = now - self.last_saved
        step = (total or 0) / 100
        if elapsed >= PROGRESS_SECONDS or (step and done - self.last_done >= step and elapsed >= MIN_PROGRESS_SECONDS):
            self.save(done, total)

    def save(self, done: int, total: int | None) -> None:
        self.job.bytes_done = done
        if total is not None:
            self.job.bytes_total = total
        self.job.heartbeat_at = timezone.now()
        self.job.save(update_fields=["bytes_done", "bytes_total", "heartbeat_at"])
        self.last_saved, self.last_done = time.monotonic(), done


@contextmanager
def beating(job_id, every: float = PROGRESS_SECONDS):
    """Keep a running job's heartbeat going from a thread for as long as its worker runs it.

    Steps without progress of their own (asking Geti, waiting for a deployment, storing a big
    file for minutes) beat too, so a job is silent only when its worker is gone: any worker,
    starting or running, may then fail it (``fail_stale_jobs``) without ever failing an import
    that another worker is still running."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(every):
                try:
                    ImportJob.objects.filter(pk=job_id, state=ImportJob.State.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:  # a missed beat is harmless; the next one may pass
                    logger.warning("Could not record the heartbeat of import %s", job_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name="import-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def check_archive(fileobj) -> list[str]:
    """Refuse an archive a consumer could not unpack safely: absolute paths, ``..`` and links.

    Reads only the zip's central directory. Returns the member names.
    """
    fileobj.seek(0)
    try:
        with zipfile.ZipFile(fileobj) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise ImportFailed(f"Geti's download is not a usable zip archive ({exc}); nothing was stored.") from exc
    if not infos:
        raise ImportFailed("Geti's download is an empty zip archive; nothing was stored.")
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            reason = "an absolute path"
        elif ".." in name.split("/"):
            reason = "a '..' path"
        elif stat.S_ISLNK(info.external_attr >> 16):
            reason = "a symbolic link"
        else:
            continue
        raise ImportFailed(f"Unsafe archive from Geti: member {info.filename!r} is {reason}; nothing was stored.")
    fileobj.seek(0)
    return [info.filename for info in infos]


def _export_route_missing(exc: GetiError) -> bool:
    """True when the server has no export route (an old or trimmed Geti), not when the model is
    missing: Geti's own "not found" answers carry an error code, a missing route does not."""
    return exc.status == 405 or (exc.status == 404 and not exc.code)


def _download(client, project, group, model, optimized, writer, progress) -> str:
    """Stream the model into ``writer``; return which package was fetched."""
    if settings.GETI_DOWNLOAD_ROUTE != "deployment":
        try:
            client.download_model(project.id, group.id, model.id, optimized.id, writer, progress=progress)
            return "model_only"
        except GetiError as exc:
            if not (_export_route_missing(exc) and optimized.is_openvino):
                raise
            logger.info("Geti has no export route for %s (%s); using a code deployment", optimized.id, exc)
            writer.reset()
    if not optimized.is_openvino:
        raise ImportFailed(
            f"Geti packages only OpenVINO models as deployments; {optimized.name} is {optimized.model_format}."
        )
    deployment = client.prepare_deployment(project.id, [{"model_id": optimized.id, "model_group_id": group.id}])
    try:
        client.wait_for_deployment(
            project.id,
            deployment.id,
            deadline_seconds=settings.GETI_DEPLOYMENT_DEADLINE_SECONDS,
            poll_interval=settings.GETI_DEPLOYMENT_POLL_SECONDS,
        )
    except GetiError as exc:
        if exc.code == "deployment_failed":
            raise ImportFailed(
                f"Geti could not prepare a deployment of {optimized.name}: the deployment {deployment.id} ended FAILED."
            ) from exc
        raise
    client.download_deployment(project.id, deployment.id, writer, progress=progress)
    return "geti_sdk_deployment"


def _import(job: ImportJob, progress: ProgressReporter) -> Artifact:
    existing = Artifact.objects.filter(external_id=job.optimized_model_id).first()
    if existing is not None:
        return existing  # imported before: nothing to download
    config = get_config()
    with GetiClient(config) as client:
        project = client.get_project(job.project_id)
        group = next((g for g in client.list_model_groups(job.project_id) if g.id == job.group_id), None)
        if group is None:
            raise ImportFailed(f"Geti project {project.name} has no model group {job.group_id} any more.")
        model = client.get_model(job.project_id, job.group_id, job.model_id)
        optimized = next((o for o in model.optimized_models if o.id == job.optimized_model_id), None)
        if optimized is None:
            raise ImportFailed(f"Geti model {job.model_id} has no optimized model {job.optimized_model_id} any more.")
        if model.is_purged:
            raise ImportFailed(f"The weights of {optimized.name} were purged in Geti; it cannot be downloaded.")

        with tempfile.NamedTemporaryFile(prefix="geti-", suffix=".zip", dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
            writer = HashingWriter(tmp, limit=settings.REGISTRY_MAX_UPLOAD_BYTES)
            package = _download(client, project, group, model, optimized, writer, progress)
            tmp.flush()
            progress.save(writer.size, writer.size)
            check_archive(tmp)
            try:
                return register_artifact(
                    model_name=registered_model_for(project.id, project.name, group.name),
                    version=str(model.version if model.version is not None else model.id),
                    fileobj=tmp,
                    user=job.created_by,
                    version_fields=version_fields_for(config, project, group, model),
                    artifact_fields=artifact_fields_for(optimized, package),
                    size=writer.size,
                    sha256=writer.sha256.hexdigest(),
                    filename=f"{optimized.name or optimized.id}.zip",
                    content_type="application/zip",
                    audit_action=AuditEntry.Action.IMPORT,
                )
            except Conflict:
                existing = Artifact.objects.filter(external_id=job.optimized_model_id).first()
                if existing is not None:
                    return existing  # imported meanwhile by another path (the Intel API, say)
                raise


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, GetiError):
        return describe(exc)
    if isinstance(exc, ValidationError):
        messages = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        return "Invalid metadata from Geti: " + "; ".join(
            f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in messages.items()
        )
    if isinstance(exc, RegistryError):
        return exc.message
    return str(exc)


def run_import(job_id) -> ImportJob | None:
    """Run one queued import job to the end; the worker's task calls this.

    The queued -> running step is one conditional UPDATE, so a job is run once even if its task
    is delivered twice; a watch is queued with it, so the job is failed if this worker dies.
    Every failure the user can act on ends the job as failed with a message; an unexpected one
    does too, and is re-raised so the worker logs it.
    """
    now = timezone.now()
    with transaction.atomic():
        if not ImportJob.objects.filter(pk=job_id, state=ImportJob.State.QUEUED).update(
            state=ImportJob.State.RUNNING, started_at=now, heartbeat_at=now
        ):
            logger.info("Import job %s is not queued (run already, or deleted); nothing to do", job_id)
            return ImportJob.objects.filter(pk=job_id).first()
        watch_later(job_id, now)
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    progress = ProgressReporter(job)
    try:
        with beating(job.pk):
            artifact = _import(job, progress)
    except (
        GetiError,
        ImportFailed,
        ValidationError,
        GetiDisabled,
        GetiMisconfigured,
        ArtifactStorageError,
        Conflict,
        FileTooLarge,
        RegistryError,
    ) as exc:
        logger.warning("Import job %s failed: %s", job.pk, _error_text(exc))
        _finish(job, ImportJob.State.FAILED, error=_error_text(exc))
    except Exception as exc:
        logger.exception("Import job %s failed unexpectedly", job.pk)
        _finish(job, ImportJob.State.FAILED, error=f"Unexpected error: {exc.__class__.__name__}: {exc}")
        raise
    else:
        _finish(job, ImportJob.State.DONE, artifact=artifact)
    return job


def _finish(job: ImportJob, state: str, *, artifact: Artifact | None = None, error: str = "") -> None:
    """End a running job and announce it, once: a job that was failed meanwhile (its worker
    went silent for longer than GETI_IMPORT_STALE_SECONDS) stays failed, and is not announced
    again."""
    job.state, job.error, job.artifact = state, error[:10_000], artifact
    job.finished_at = job.heartbeat_at = timezone.now()
    fields = {"state": state, "error": job.error, "artifact": artifact, "finished_at": job.finished_at}
    if artifact is not None:
        job.bytes_done = job.bytes_total = fields["bytes_done"] = fields["bytes_total"] = artifact.size
    with transaction.atomic():
        if not ImportJob.objects.filter(pk=job.pk, state=ImportJob.State.RUNNING).update(
            heartbeat_at=job.heartbeat_at, **fields
        ):
            job.refresh_from_db()
            logger.warning("Import job %s was %s before its worker finished it; left as it is", job.pk, job.state)
            return
        _emit_finished(job)


def _emit_finished(job: ImportJob) -> None:
    """Announce a job's end (geti_import.finished or .failed) in the transaction that ends it."""
    artifact = job.artifact
    registered = artifact.version.registered_model if artifact is not None else None
    events.emit(
        "geti_import.finished" if job.state == ImportJob.State.DONE else "geti_import.failed",
        data={
            "job": {
                "id": str(job.pk),
                "state": job.state,
                "project_id": job.project_id,
                "project_name": job.project_name,
                "group_id": job.group_id,
                "model_id": job.model_id,
                "optimized_model_id": job.optimized_model_id,
                "name": job.name,
                "error": job.error,
            },
            "version": {"id": str(artifact.version.pk), "version": artifact.version.version} if artifact else None,
            "artifact": {"id": str(artifact.pk), "external_id": artifact.external_id} if artifact else None,
        },
        registered_model_id=registered.pk if registered else None,
        registered_model_name=registered.name if registered else "",
        actor=events.actor_of(job.created_by),
    )


def watch_later(job_id, heartbeat_at) -> None:
    """Queue a look at a running job for when it would be stale if its worker stopped beating
    at ``heartbeat_at``: any worker then fails it, or queues the next look. So a job whose
    worker died is failed within about GETI_IMPORT_STALE_SECONDS, however many workers run and
    whether or not one restarts. Backends that cannot defer run imports in the request, where
    there is no worker to lose."""
    from .tasks import watch_geti_import

    if watch_geti_import.get_backend().supports_defer:
        at = heartbeat_at + timezone.timedelta(seconds=settings.GETI_IMPORT_STALE_SECONDS + 1)
        watch_geti_import.using(run_after=at).enqueue(str(job_id))


def watch(job_id) -> str:
    """The watch ``watch_later`` queued: fail stale jobs, then look at this one again later if
    it is still running. Returns the job's state, or "deleted"."""
    fail_stale_jobs(settings.GETI_IMPORT_STALE_SECONDS)
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "deleted"
    if job.state == ImportJob.State.RUNNING:
        watch_later(job.pk, job.heartbeat_at)
    return job.state


def fail_stale_jobs(older_than_seconds: int) -> int:
    """Mark running jobs whose worker stopped reporting as failed; return how many.

    A worker killed mid-import (OOM, redeploy) leaves its job "running" forever otherwise, and
    the partial unique constraint would keep the model from being imported again.
    """
    now, count = timezone.now(), 0
    for job in ImportJob.objects.stale(older_than_seconds).select_related("created_by"):
        with transaction.atomic():
            # Conditional, so a job that reported or finished meanwhile is left alone.
            if (
                ImportJob.objects.stale(older_than_seconds)
                .filter(pk=job.pk)
                .update(
                    state=ImportJob.State.FAILED,
                    finished_at=now,
                    heartbeat_at=now,
                    error="The worker running this import stopped before it finished; start the import again.",
                )
            ):
                job.refresh_from_db()
                _emit_finished(job)
                count += 1
    return count
