"""Python client for the Model Registry: ``Registry(url, token)`` and its typed errors."""

from .client import Registry
from .errors import (
    AuthenticationError,
    ChecksumMismatch,
    Conflict,
    DirectUploadUnavailable,
    FileTooLarge,
    NotFound,
    PermissionDenied,
    RegistryError,
    ServerUnavailable,
    ValidationError,
)
from .transfer import PullResult

__all__ = [
    "AuthenticationError",
    "ChecksumMismatch",
    "Conflict",
    "DirectUploadUnavailable",
    "FileTooLarge",
    "NotFound",
    "PermissionDenied",
    "PullResult",
    "Registry",
    "RegistryError",
    "ServerUnavailable",
    "ValidationError",
]
