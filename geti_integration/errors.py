"""Errors of the Geti integration as the registry's clients see them.

``GetiError`` (client.py) says what went wrong talking to Geti; ``describe`` turns it into a
sentence a user can act on, and ``api_status`` picks the HTTP status our API answers with.
The integration's views turn a GetiError into a registry error at their own boundary
(``GetiErrorsMixin``), so the registry's core and its exception handler know nothing of Geti.
"""

from rest_framework import status

from models_app.errors import RegistryError

from .client import GetiError

DISABLED_MESSAGE = "The Geti integration is off: set GETI_HOST and GETI_TOKEN."

# Geti's "this thing does not exist" codes: a 404 we pass on as a 404, not as an outage.
NOT_FOUND_CODES = frozenset(
    {
        "project_not_found",
        "model_storage_not_found",
        "model_not_found",
        "organization_not_found",
        "workspace_not_found",
        "code_deployment_not_found",
    }
)


class GetiDisabled(RegistryError):
    """GETI_HOST is not set: pages and endpoints of the integration say so instead of failing.

    A 404, not a 503: nothing is down, this registry simply has no Geti to show, and a retry
    will not change that until an operator sets the variables. (Intel's service answered a 500.)
    """

    status = 404
    code = "geti_disabled"
    default_message = DISABLED_MESSAGE


class GetiMisconfigured(RegistryError):
    """The GETI_* variables are set but unusable (no token, a CA bundle path that does not exist)."""

    status = 503
    code = "geti_misconfigured"
    default_message = "The Geti integration is misconfigured."


class ImportFailed(Exception):
    """An import cannot go on for a reason the user should read (unsafe archive, missing model)."""


def describe(exc: GetiError) -> str:
    """One sentence for a job's error or an API message; a refused token is named as such
    (Intel's service showed an empty project list instead)."""
    if exc.status == 401:
        return f"Geti refused the token (HTTP 401: {exc.message}); check GETI_TOKEN."
    if exc.status == 403:
        return f"Geti denied access (HTTP 403: {exc.message}); the token's user lacks a permission."
    return f"Geti: {exc}"


def api_status(exc: GetiError) -> tuple[int, str]:
    """(HTTP status, error code) for a GetiError answered by our API.

    A refused token is a bad gateway configuration (502), not an outage worth retrying; a missing
    project or model is a 404; everything else (Geti down, slow, answering nonsense) is a 503.
    """
    if exc.status in (401, 403):
        return status.HTTP_502_BAD_GATEWAY, "geti_token_refused" if exc.status == 401 else "geti_forbidden"
    if exc.status == 404 and exc.code in NOT_FOUND_CODES:
        return status.HTTP_404_NOT_FOUND, exc.code
    return status.HTTP_503_SERVICE_UNAVAILABLE, "geti_unavailable"


def registry_error(exc: GetiError) -> RegistryError:
    """The registry error a face answers for a GetiError: Geti failed, not the client, so a 503
    asking to retry in 30 s (502 for a refused token, 404 for a missing project)."""
    code_status, code = api_status(exc)
    return RegistryError(describe(exc), code=code, status=code_status, retry_after=30 if code_status == 503 else None)


class GetiErrorsMixin:
    """For the integration's API views: a GetiError becomes a registry error before the API's
    exception handler sees it."""

    def handle_exception(self, exc):
        if isinstance(exc, GetiError):
            converted = registry_error(exc)
            converted.__cause__ = exc
            exc = converted
        return super().handle_exception(exc)
