"""``Idempotency-Key`` on the API's create requests: a client that did not get the answer to a
create (a timeout, a dropped connection) sends the request again with the same key and gets the
first answer instead of a second registered model, version or artifact.

- The first request with a key runs; its answer (status, body, Location) is kept with the key.
- A retry with the same key and the same request gets that answer again (``Idempotent-Replayed:
  true``), without running.
- The same key with another request (method, path, query or body) is a 422.
- A retry while the first request still runs is a 409 with ``Retry-After``.
- A first request that fails with a 5xx leaves no key behind, so the retry runs.

Keys belong to the user who sent them. The request body is part of the fingerprint, except for a
file upload, whose body is never read twice: there its size and content type stand for it.
"""

import hashlib

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from ..models import IdempotencyKey

HEADER = "Idempotency-Key"
STREAMED_TYPES = ("multipart/form-data", "application/octet-stream")


class KeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used for a different request."


class KeyInProgress(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = "A request with this Idempotency-Key is still running; retry shortly."
    wait = 1


class InvalidKey(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "Idempotency-Key must be 1 to 255 printable characters."


class Replay(Exception):
    """Raised from ``initial()`` to answer with the kept response instead of running the view."""

    def __init__(self, response):
        self.response = response


def fingerprint(request):
    django_request = request._request
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    digest = hashlib.sha256()
    for part in (request.method, django_request.path, django_request.META.get("QUERY_STRING", ""), content_type):
        digest.update(part.encode() + b"\0")
    if content_type in STREAMED_TYPES:
        digest.update(django_request.META.get("CONTENT_LENGTH", "").encode())
    else:
        digest.update(django_request.body)
    return digest.hexdigest()


class IdempotentCreateMixin:
    """For API views whose POST (or PUT) creates things: honours an ``Idempotency-Key`` header."""

    idempotency_row = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get(HEADER)
        if key is None or request.method not in ("POST", "PUT") or not request.user.is_authenticated:
            return
        if not 0 < len(key) <= 255 or not key.isprintable():
            raise InvalidKey()
        request_print = fingerprint(request)
        try:
            with transaction.atomic():
                self.idempotency_row = IdempotencyKey.objects.create(
                    user=request.user, key=key, fingerprint=request_print
                )
            return
        except IntegrityError:
            pass
        kept = IdempotencyKey.objects.filter(user=request.user, key=key).first()
        if kept is None:  # the first request failed and let the key go meanwhile
            raise KeyInProgress()
        if kept.fingerprint != request_print:
            raise KeyReused()
        if kept.status_code is None:
            raise KeyInProgress()
        headers = {"Idempotent-Replayed": "true"}
        if kept.location:
            headers["Location"] = kept.location
        raise Replay(Response(kept.response, status=kept.status_code, headers=headers))

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except Exception:
            self.release_key()
            raise

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        row, self.idempotency_row = self.idempotency_row, None
        if row is not None:
            if response.status_code >= 500:
                row.delete()
            else:
                row.status_code = response.status_code
                row.response = getattr(response, "data", None)
                row.location = response.get("Location", "")
                row.save(update_fields=["status_code", "response", "location"])
        return response

    def release_key(self):
        row, self.idempotency_row = self.idempotency_row, None
        if row is not None:
            row.delete()
