"""The one JSON error shape, for every error the registry returns.

{"error": {"code": "validation_error", "message": "Invalid input.",
           "fields": {"name": ["This field is required."]}}}
"""

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from ..errors import RegistryError
from ..lib.http import error_body

logger = logging.getLogger(__name__)


def _flatten_message(detail):
    if isinstance(detail, list):
        return " ".join(_flatten_message(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_flatten_message(v)}" for k, v in detail.items())
    return str(detail)


def _as_fields(detail):
    """DRF detail (dict/list/str) as {field: [messages]}; non-field errors under non_field_errors."""
    if isinstance(detail, dict):
        return {
            k: [str(m) for m in (v if isinstance(v, list) else [v])] if not isinstance(v, dict) else _as_fields(v)
            for k, v in detail.items()
        }
    return {"non_field_errors": [str(m) for m in (detail if isinstance(detail, list) else [detail])]}


def exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: map every exception to the one error shape and a fitting status."""
    headers = {}
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, (ProtectedError, IntegrityError)):
        set_rollback()
        logger.info("Conflict: %s", exc)
        return Response(
            error_body("conflict", "The request conflicts with existing data."), status=status.HTTP_409_CONFLICT
        )
    elif isinstance(exc, RegistryError):
        set_rollback()
        if exc.status == status.HTTP_503_SERVICE_UNAVAILABLE:
            headers["Retry-After"] = str(exc.retry_after or 5)
        body = error_body(exc.code, exc.message, exc.fields)
        # Some errors carry more than a message (NoMatchingVariant names the constraint that failed).
        body["error"].update(exc.extra)
        return Response(body, status=exc.status, headers=headers)
    elif isinstance(exc, (OperationalError, InterfaceError, DatabaseError)):
        logger.exception("Database unavailable")
        return Response(
            error_body("database_unavailable", "The database is unavailable; try again later."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django logs it and the 500 handler answers in the same shape

    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if exc.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        headers.setdefault("Retry-After", "5")

    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", "Invalid input.", _as_fields(exc.detail))
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        body = error_body(code, _flatten_message(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
