"""Intel's encodings, in and out.

In: Intel clients send every field as a form string (``labels`` as a Python or JSON list
literal, ``overview`` as a JSON object, ``precision`` in lower case). ``parse_entry`` turns them
into the values our models hold and answers bad input with Intel's status codes and messages.
The models' own validation (run by the services) still has the last word.

Out: ``entry`` renders one artifact as Intel's ``RegisteredModelOut``: 20 keys in Intel's order,
names and types.
"""

import ast
import json
import re
from datetime import UTC

from rest_framework import exceptions, status
from rest_framework.exceptions import APIException

from .. import models
from ..downloads import artifact_uri
from ..models import Artifact

# Intel's path id pattern: the one client-chosen ids (external_id) follow.
ID_PATTERN = re.compile(models.EXTERNAL_ID_PATTERN)

ZIP_CONTENT_TYPES = {
    "application/zip",
    "multipart/x-zip",
    "application/zip-compressed",
    "application/x-zip-compressed",
    "application/x-zip",
}

# Intel's fields, split as our domain keeps them (Intel had no description, tags, provenance,
# lineage, and its id is a field of its own).
VERSION_FIELDS = tuple(name for name in models.VERSION_FIELDS if name not in ("description", "tags", "provenance"))
ARTIFACT_FIELDS = tuple(name for name in models.ARTIFACT_FIELDS if name not in ("external_id", "derived_from"))
OPTIONAL_FIELDS = (*VERSION_FIELDS, *ARTIFACT_FIELDS, "created_date", "size")
POST_FIELDS = {"file", "name", "version", "id", *OPTIONAL_FIELDS}

# A superset of Intel's fp32, fp16, int8 and int4: our bf16, fp8 and mixed are accepted too.
PRECISIONS = {value.lower(): value for value in Artifact.Precision.values}


class IntelError(APIException):
    """An error with Intel's status code and Intel's message, in our JSON error shape."""

    def __init__(self, status_code, code, message):
        self.status_code = status_code
        super().__init__(message, code)


class Unprocessable(exceptions.ValidationError):
    """Missing or mistyped fields: Intel (FastAPI) answered 422, so do we."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


def not_found():
    return IntelError(status.HTTP_404_NOT_FOUND, "not_found", "Model not found.")


def check_id(value):
    """Intel's id rule, for path ids and client-chosen ids alike."""
    if not ID_PATTERN.match(value or ""):
        raise IntelError(
            status.HTTP_400_BAD_REQUEST,
            "invalid_id",
            "Invalid format for model ID. An id is 16 to 128 letters, digits, '_' or '-'.",
        )
    return value


def parse_precision(value):
    key = value.strip().lower()
    if key not in PRECISIONS:
        raise IntelError(status.HTTP_400_BAD_REQUEST, "invalid_precision", f"{key} is not a supported precision.")
    return PRECISIONS[key]


def parse_labels(value):
    """A list, given as a JSON or Python literal; its items must be names or objects.

    Intel accepted any list (``[1, 2]``) and then failed every read; we refuse it on the way in.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                value = None
    if not isinstance(value, list) or not all(isinstance(item, (str, dict)) for item in value):
        raise IntelError(status.HTTP_422_UNPROCESSABLE_ENTITY, "validation_error", "labels is not a valid list.")
    return value


def parse_object(name, value):
    """A JSON object. Stored as parsed JSON, so ``true``/``null`` inside cannot poison reads."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise IntelError(
            status.HTTP_422_UNPROCESSABLE_ENTITY, "validation_error", f"{name} is not a valid JSON object."
        )
    return value


def _typed(data):
    """Intel's (FastAPI's) type checks: ``score`` a float, ``size`` an integer."""
    errors = {}
    for key, kind, label in (("score", float, "a number"), ("size", int, "an integer")):
        if key in data:
            try:
                data[key] = kind(data[key])
            except (TypeError, ValueError):
                errors[key] = [f"Input should be {label}."]
    if errors:
        raise Unprocessable(errors)
    return data


def parse_entry(data, files=None, *, creating):
    """Parse an Intel POST (``creating``) or PUT body into our fields.

    Returns a dict with ``name``, ``version``, ``id``, ``file`` (when given), ``created_date``,
    ``version_fields`` and ``artifact_fields``. Checks run in Intel's order: required fields and
    types (422), unsupported keys (422, POST only: Intel's PUT ignored them), file type (422),
    precision (400). Empty strings count as absent, as in Intel.
    """
    files = files or {}
    values = {key: data.get(key) for key in data.keys() if key not in files}
    values = {key: value for key, value in values.items() if value not in ("", None)}
    upload = files.get("file")
    if creating:
        missing = {key: ["Field required."] for key in ("name", "version") if key not in values}
        if upload is None:
            missing["file"] = ["Field required."]
        if missing:
            raise Unprocessable(missing)
    _typed(values)
    for key in ("overview", "optimization_capabilities"):
        if key in values:
            values[key] = parse_object(key, values[key])
    if "labels" in values:
        values["labels"] = parse_labels(values["labels"])
    if creating:
        unsupported = [key for key in [*data.keys(), *files.keys()] if key not in POST_FIELDS]
        if unsupported:
            raise IntelError(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                "unsupported_keys",
                f"Unsupported key(s) found: {', '.join(dict.fromkeys(unsupported))}",
            )
        if (upload.content_type or "").lower() not in ZIP_CONTENT_TYPES:
            raise IntelError(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                "unsupported_file_type",
                f"Unsupported file type found: {upload.content_type or None}",
            )
    if "precision" in values:
        values["precision"] = parse_precision(str(values["precision"]))
    if creating and "id" in values:
        check_id(values["id"])
    return {
        "name": values.get("name"),
        "version": values.get("version"),
        "id": values.get("id") if creating else None,
        "file": upload,
        "created_date": values.get("created_date"),
        "version_fields": {key: values[key] for key in VERSION_FIELDS if key in values},
        "artifact_fields": {key: values[key] for key in ARTIFACT_FIELDS if key in values},
    }


def intel_date(value):
    """Intel's date format, ``YYYY-MM-DD HH:MM:SS.ffffff UTC`` (here truly in UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


# What ``entry`` reads of an artifact, its version and its registered model: the rest of each
# row is not fetched for Intel's list.
ENTRY_FIELDS = (
    *("id", "external_id", "version", "file", "precision", "target_device", "target_device_type", "format"),
    *("score", "optimization_capabilities", "size", "created_at", "updated_at"),
    *("version__registered_model", "version__version", "version__provenance", "version__updated_at"),
    *("version__origin", "version__project_id", "version__project_name", "version__category"),
    *("version__overview", "version__labels", "version__architecture", "version__registered_model__name"),
)


def entry(artifact, files_url):
    """One artifact as Intel's ``RegisteredModelOut``.

    ``files_url`` builds the download URL of an entry id; it becomes ``file_url`` when the file is
    not in an S3 bucket (Intel gave ``minio://<bucket>/<key>``, which clients only display).
    """
    version = artifact.version
    public_id = artifact.public_id
    return {
        "id": public_id,
        "name": version.registered_model.name,
        "target_device": artifact.target_device,
        "created_date": version.provenance.get("created_date") or intel_date(artifact.created_at),
        "last_updated_date": intel_date(max(artifact.updated_at, version.updated_at)),
        "precision": [artifact.precision.lower()],
        "size": artifact.size,
        "version": version.version,
        "format": artifact.format or None,
        "origin": version.origin or None,
        "file_url": artifact_uri(artifact) or files_url(public_id),
        "project_id": version.project_id or None,
        "project_name": version.project_name or None,
        "category": version.category or None,
        "target_device_type": artifact.target_device_type or None,
        "score": artifact.score if artifact.score is not None else 0.0,
        "overview": version.overview,
        "optimization_capabilities": artifact.optimization_capabilities,
        "labels": version.labels,
        "architecture": version.architecture or None,
    }
