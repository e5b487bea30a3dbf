"""Errors of the distribution API, in its own shape rather than the registry's:

    {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "...", "detail": {...}}]}

OCI clients (oras, skopeo, container runtimes) read these codes, so every answer under /v2/
uses them, domain errors of the core included (``oci_error_for``).
"""

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError
from django.http import Http404, JsonResponse

from ..blob_uploads import BlobUploadError
from ..errors import ArtifactStorageError, Conflict, FileTooLarge, RangeNotSatisfiable

logger = logging.getLogger(__name__)

# The distribution spec's codes and their statuses, plus UNAVAILABLE (503) as Docker's registry
# answers it, and RANGE_INVALID for a Range outside a blob.
STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 416,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 404,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "PAGINATION_NUMBER_INVALID": 400,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "RANGE_INVALID": 416,
    "UNAVAILABLE": 503,
}


class OCIError(Exception):
    """An error answered in the distribution API's shape; ``status`` defaults to the code's."""

    def __init__(self, code, message, detail=None, *, status=None, headers=None):
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail
        self.status = status or STATUS[code]
        self.headers = headers or {}


def error_response(error):
    body = {"code": error.code, "message": error.message}
    if error.detail is not None:
        body["detail"] = error.detail
    response = JsonResponse({"errors": [body]}, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def oci_error_for(exc):
    """The OCIError for an exception of the core, or None for a bug (a 500)."""
    if isinstance(exc, OCIError):
        return exc
    if isinstance(exc, BlobUploadError):
        return OCIError(exc.code, exc.message, exc.detail)
    if isinstance(exc, ValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return OCIError("MANIFEST_INVALID", "The manifest's metadata is invalid.", fields)
    if isinstance(exc, Conflict):
        return OCIError("DENIED", str(exc), {"reason": "conflict"}, status=409)
    if isinstance(exc, FileTooLarge):
        return OCIError("SIZE_INVALID", str(exc), {"limit": exc.limit}, status=413)
    if isinstance(exc, RangeNotSatisfiable):
        return OCIError("RANGE_INVALID", str(exc))
    if isinstance(exc, ArtifactStorageError):
        return OCIError("UNAVAILABLE", str(exc), headers={"Retry-After": "5"})
    if isinstance(exc, DatabaseError):
        logger.exception("Database unavailable")
        return OCIError("UNAVAILABLE", "The database is unavailable; try again later.", headers={"Retry-After": "5"})
    if isinstance(exc, Http404):
        return OCIError("NAME_UNKNOWN", str(exc) or "Not found.")
    if isinstance(exc, PermissionDenied):
        return OCIError("DENIED", "You may not do this.")
    return None
