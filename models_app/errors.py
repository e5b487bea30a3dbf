"""Domain errors: plain exceptions with an HTTP status, a stable code and a message.

Services raise them; each face maps them: the API's exception handler (``models_app.api.errors``,
also behind the Intel routes) answers the one JSON error shape, pages and the admin show
``message``, the Geti worker records it on the job. Nothing here depends on DRF. Django's
ValidationError stays the domain's validation error (400 with ``fields``).
"""


class RegistryError(Exception):
    """Base class: an error the client should see, with a stable machine-readable code.

    ``status`` is the HTTP status a face answers with, ``code`` the error code of the JSON body,
    ``message`` the sentence a user reads, ``fields`` optional per-field messages, ``extra``
    further keys of the error body, and ``retry_after`` the seconds a 503 asks clients to wait.
    """

    status = 400
    code = "bad_request"
    default_message = "The request could not be completed."
    retry_after = None

    def __init__(self, message=None, *, code=None, status=None, fields=None, extra=None, retry_after=None):
        self.message = str(message) if message is not None else self.default_message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if retry_after is not None:
            self.retry_after = retry_after
        self.fields, self.extra = fields, extra or {}
        super().__init__(self.message)

    def __str__(self):
        return self.message


class Conflict(RegistryError):
    """The write would duplicate an existing row or break a rule about existing rows."""

    status = 409
    code = "conflict"
    default_message = "The request conflicts with an existing object."


class FileTooLarge(RegistryError):
    """The uploaded file is bigger than REGISTRY_MAX_UPLOAD_BYTES."""

    status = 413
    code = "file_too_large"

    def __init__(self, limit):
        super().__init__(f"The file is larger than the maximum of {limit} bytes.")
        self.limit = limit


class ArtifactStorageError(RegistryError):
    """The object storage could not be reached or refused the operation."""

    status = 503
    code = "storage_unavailable"
    default_message = "The artifact storage is unavailable."


class RangeNotSatisfiable(RegistryError):
    """A download's Range lies outside the file."""

    status = 416
    code = "range_not_satisfiable"
    default_message = "The requested range is outside the file."


class NoMatchingVariant(RegistryError):
    """No artifact of the chosen version meets the caller's constraints.

    ``constraint`` names the constraint that ruled out the last candidates and ``available`` the
    values the version does have for it, so a client can tell what to ask for instead.
    """

    status = 404
    code = "no_matching_variant"

    def __init__(self, message, *, constraint=None, available=None):
        super().__init__(message, extra={"constraint": constraint, "available": available or []})


class DirectUploadUnavailable(RegistryError):
    """Direct uploads need S3 (presigned URLs); this registry stores files locally."""

    status = 501
    code = "direct_upload_unavailable"
    default_message = (
        "Direct uploads need S3 storage; this registry stores files locally. "
        "Upload the file with POST /api/v1/artifacts/ instead."
    )
