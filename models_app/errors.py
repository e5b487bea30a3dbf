"""Domain errors. The API's exception handler maps each one to a status code and error code."""

from rest_framework import status
from rest_framework.exceptions import APIException


class RegistryError(APIException):
    """Base class: an error the client should see, with a stable machine-readable code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request could not be completed."


class Conflict(RegistryError):
    """The write would duplicate an existing row or break a rule about existing rows."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with an existing object."


class FileTooLarge(RegistryError):
    """The uploaded file is bigger than REGISTRY_MAX_UPLOAD_BYTES."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "file_too_large"

    def __init__(self, limit):
        super().__init__(f"The file is larger than the maximum of {limit} bytes.")
        self.limit = limit


class ArtifactStorageError(RegistryError):
    """The object storage could not be reached or refused the operation."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "storage_unavailable"
    default_detail = "The artifact storage is unavailable."


class RangeNotSatisfiable(RegistryError):
    status_code = status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE
    default_code = "range_not_satisfiable"
    default_detail = "The requested range is outside the file."


class NoMatchingVariant(RegistryError):
    """No artifact of the chosen version meets the caller's constraints.

    ``constraint`` names the constraint that ruled out the last candidates and ``available`` the
    values the version does have for it, so a client can tell what to ask for instead.
    """

    status_code = status.HTTP_404_NOT_FOUND
    default_code = "no_matching_variant"

    def __init__(self, message, *, constraint=None, available=None):
        super().__init__(message)
        self.extra = {"constraint": constraint, "available": available or []}


class DirectUploadUnavailable(RegistryError):
    """Direct uploads need S3 (presigned URLs); this registry stores files locally."""

    status_code = status.HTTP_501_NOT_IMPLEMENTED
    default_code = "direct_upload_unavailable"
    default_detail = (
        "Direct uploads need S3 storage; this registry stores files locally. "
        "Upload the file with POST /api/v1/artifacts/ instead."
    )
