"""Typed exceptions for the registry's errors.

The registry answers every error in one JSON shape,
``{"error": {"code": ..., "message": ..., "fields": {...}}}``; each exception carries it whole
(``status``, ``code``, ``message``, ``fields`` and any extra keys such as ``constraint``), so a
script can branch on the code and a person reads the message.
"""


class RegistryError(Exception):
    """Any failure the client reports. ``status`` is the HTTP status (None when the server was
    not reached), ``code`` and ``message`` are the registry's, ``fields`` its per-field errors."""

    def __init__(self, message, *, status=None, code=None, fields=None, extra=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.fields = fields or {}
        self.extra = extra or {}

    def __str__(self):
        text = self.message
        for field, messages in self.fields.items():
            text += f" {field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
        return text


class ValidationError(RegistryError):
    """400: bad metadata, query or body."""


class AuthenticationError(RegistryError):
    """401 (and 403 for a missing or refused token): log in again or check the token."""


class PermissionDenied(RegistryError):
    """403: the user lacks the permission for this write."""


class NotFound(RegistryError):
    """404: no such model, version, alias or variant (``code`` says which, e.g. ``no_matching_variant``)."""


class Conflict(RegistryError):
    """409: a duplicate variant, version or name, or a delete the data forbids."""


class FileTooLarge(RegistryError):
    """413: the file is over the registry's limit."""


class DirectUploadUnavailable(RegistryError):
    """501: the registry stores files locally and takes uploads only through its API."""


class ServerUnavailable(RegistryError):
    """5xx, or the registry could not be reached: try again later."""


class ChecksumMismatch(RegistryError):
    """The bytes do not have the sha256 they should: refused by the registry on upload, or
    found by the client after a download (the file is not written)."""


_BY_STATUS = {400: ValidationError, 401: AuthenticationError, 403: PermissionDenied, 404: NotFound}
_BY_STATUS.update({409: Conflict, 413: FileTooLarge, 501: DirectUploadUnavailable})
_AUTH_CODES = {"not_authenticated", "authentication_failed"}


def from_response(response):
    """The exception for an error response of the registry (or of anything in front of it)."""
    try:
        error = response.json()["error"]
        code, message = error.get("code"), error.get("message") or response.reason
    except (ValueError, KeyError, TypeError, AttributeError):
        error, code = {}, None
        message = f"{response.status_code} {response.reason}".strip()
    fields = error.get("fields") or {}
    extra = {k: v for k, v in error.items() if k not in ("code", "message", "fields")}
    status = response.status_code
    if code in _AUTH_CODES:
        cls = AuthenticationError
    else:
        cls = _BY_STATUS.get(status) or (ServerUnavailable if status >= 500 else RegistryError)
    return cls(message, status=status, code=code, fields=fields, extra=extra)
