"""Running inspections: scheduled after every registration, run by the background worker.

``register_artifact`` (which every writer goes through: the API's uploads, direct uploads, the
Intel-compatible API, Geti imports) calls ``schedule_inspection`` on commit, so an inspection never
runs for a row that was rolled back and never slows the upload's response. The worker's task calls
``inspect_artifact``, which reads the file through the storage layer in bounded ranged reads.
"""

import io
import logging

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from ..models import Artifact, ArtifactInspection
from ..storage import open_range
from .common import InspectionError, Limits, NotApplicable
from .detect import inspect_file

logger = logging.getLogger(__name__)

READ_BUFFER_BYTES = 1024 * 1024
MAX_SIGNATURE_TENSORS = 100
SIGNATURE_KEYS = ("inputs", "outputs")
COLUMN_KEYS = ("format", "weight_precision", "ir_version", "opset", "parameter_count")


class StoredFileReader(io.RawIOBase):
    """A seekable, read-only view of a stored artifact made of ranged reads, so a zip's directory
    or one of its members is fetched without the rest of the file. Refuses to read more than
    ``budget`` bytes in all."""

    def __init__(self, name, size, budget):
        super().__init__()
        self.name_in_storage, self.size, self.budget = name, size, budget
        self.position, self.bytes_read = 0, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer):
        length = min(len(buffer), self.size - self.position)
        if length <= 0:
            return 0
        if self.bytes_read + length > self.budget:
            raise InspectionError(f"Inspecting the file would read more than {self.budget} bytes of it.")
        body = open_range(self.name_in_storage, self.position, self.position + length - 1)
        try:
            data = b"".join(body.iter_chunks(length))
        finally:
            body.close()
        buffer[: len(data)] = data
        self.position += len(data)
        self.bytes_read += len(data)
        return len(data)


def limits():
    return Limits(
        graph_bytes=settings.REGISTRY_INSPECTION_MAX_GRAPH_BYTES,
        file_bytes=settings.REGISTRY_INSPECTION_MAX_FILE_BYTES,
    )


def schedule_inspection(artifact_id):
    """Queue the inspection of one artifact for the worker. A failed enqueue is logged, not
    raised: the artifact is registered either way, and ``inspect_artifacts --pending`` catches up."""
    from ..tasks import inspect_artifact as task

    try:
        task.enqueue(str(artifact_id))
    except Exception:
        logger.exception("Could not queue the inspection of artifact %s", artifact_id)


def _input_shapes(inputs):
    text = ";".join("x".join(str(d) for d in (i.get("shape") or [])) for i in inputs)
    return text[:500]


def _outcome(artifact, lim):
    """The inspection row's fields for the artifact's file."""
    reader = StoredFileReader(artifact.file.name, artifact.size, budget=lim.file_bytes + lim.graph_bytes)
    stream = io.BufferedReader(reader, buffer_size=READ_BUFFER_BYTES)
    try:
        report = inspect_file(stream, artifact.original_filename or artifact.file.name, artifact.size, lim)
    except NotApplicable as exc:
        return {
            "status": ArtifactInspection.Status.NOT_APPLICABLE,
            "reason": str(exc),
            "format": exc.kind,
            "details": exc.details,
        }
    except InspectionError as exc:
        return {"status": ArtifactInspection.Status.FAILED, "reason": str(exc)}
    except Exception as exc:  # a storage outage, or a file no rule above foresaw
        logger.exception("Inspecting artifact %s failed", artifact.pk)
        return {"status": ArtifactInspection.Status.FAILED, "reason": f"The file could not be inspected: {exc}"[:2000]}
    # Lists load the signature: a graph with thousands of inputs keeps the first ones there,
    # and the counts in the details.
    signature = {}
    for key in SIGNATURE_KEYS:
        tensors = report.pop(key)
        report.setdefault(f"{key[:-1]}_count", len(tensors))  # an IR counts those it did not list
        signature[key] = [{**t, "name": t["name"][:200]} for t in tensors[:MAX_SIGNATURE_TENSORS]]
    columns = {key: report.pop(key) for key in COLUMN_KEYS}
    return {
        "status": ArtifactInspection.Status.DONE,
        **columns,
        "weight_precision": columns["weight_precision"] or "",  # None: no weights found
        "input_shapes": _input_shapes(signature["inputs"]),
        "signature": signature,
        "details": report,
    }


def inspect_artifact(artifact):
    """Inspect the artifact's file and store the outcome; returns the ArtifactInspection, or None
    when the artifact was deleted meanwhile. Never raises for what the file contains."""
    outcome = _outcome(artifact, limits())
    defaults = {
        "reason": "",
        "format": "",
        "weight_precision": "",
        "ir_version": None,
        "opset": None,
        "parameter_count": None,
        "input_shapes": "",
        "signature": {},
        "details": {},
        **outcome,
        "inspected_at": timezone.now(),
    }
    try:
        inspection, _ = ArtifactInspection.objects.update_or_create(artifact=artifact, defaults=defaults)
    except IntegrityError:
        return None  # deleted while its file was read
    return inspection


def inspect_artifact_by_id(artifact_id):
    """What the worker runs; the artifact may have been deleted since it was queued."""
    artifact = Artifact.objects.filter(pk=artifact_id).first()
    return inspect_artifact(artifact) if artifact is not None else None
