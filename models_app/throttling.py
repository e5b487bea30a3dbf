"""Limits on guessing passwords and API tokens.

django-axes counts failed sign-ins per client address and per account in the database, so every
gunicorn process and every replica sees the same count; past ``AXES_FAILURE_LIMIT`` failures the
client or the account is refused with a 429 and ``Retry-After`` until the cool-off ends. Failed API
tokens are counted the same way (per client: a token names no account), so the login pages, the
admin and the API share one limit.
"""

from axes.conf import settings as axes_settings
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db.models import Func, Subquery
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from .lib.http import error_body


def client_ip(request):
    """The client's address: REMOTE_ADDR, or the address the trusted proxy appended last to
    ``REGISTRY_CLIENT_IP_HEADER`` (e.g. X-Forwarded-For) when the registry runs behind one."""
    header = settings.REGISTRY_CLIENT_IP_HEADER
    if header:
        forwarded = request.headers.get(header, "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR")


def lockout_parameters(request_or_attempt, credentials=None):
    """Count per client address, and per account when there is one (AXES_LOCKOUT_PARAMETERS): a
    failed token names no account, and counting those under "no account" would lock every client
    out together."""
    username = (credentials or {}).get("username") or getattr(request_or_attempt, "username", None)
    return ["ip_address", "username"] if username else ["ip_address"]


def retry_after_seconds(request):
    cool_off = get_cool_off(request)
    return int(cool_off.total_seconds()) if cool_off else 3600


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out client (AXES_LOCKOUT_CALLABLE): 429 with Retry-After, in
    the API's error shape on API paths."""
    from registry_project.urls import is_intel_path

    seconds = retry_after_seconds(request)
    message = (
        f"Too many failed sign-ins from this client or for this account; try again in {seconds // 60 or 1} minutes."
    )
    if request.path.startswith("/api/") or is_intel_path(request.path):
        response = JsonResponse(error_body("throttled", message), status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response


class ThrottledTokenAuthentication(TokenAuthentication):
    """Token authentication that counts failed tokens per client and refuses a locked-out client,
    so guessing stops at the limit instead of slowing down.

    With the database handler, the client's failure count is read by the same query that looks
    the token up: every authenticated API request would otherwise pay a second query for it. A
    client that fails is checked on its own before its failure is counted, as before: a locked
    client's guesses are refused, never counted."""

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None  # no token: nothing to count
        self.django_request = django_request = request._request
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            if AxesProxyHandler.is_locked(django_request):
                raise Throttled(wait=retry_after_seconds(django_request)) from None
            user_login_failed.send(sender=__name__, credentials={}, request=django_request)
            if AxesProxyHandler.is_locked(django_request):
                raise Throttled(wait=retry_after_seconds(django_request)) from None
            raise

    def authenticate_credentials(self, key):
        request = self.django_request
        handler = AxesProxyHandler.get_implementation()
        if not isinstance(handler, AxesDatabaseHandler) or not axes_settings.AXES_LOCK_OUT_AT_FAILURE:
            if AxesProxyHandler.is_locked(request):
                raise Throttled(wait=retry_after_seconds(request))
            return super().authenticate_credentials(key)
        AxesProxyHandler.update_request(request)
        failures = {
            f"axes_failures_{n}": Subquery(
                attempts.order_by().annotate(total=Func("failures_since_start", function="SUM")).values("total")
            )
            for n, attempts in enumerate(handler.get_user_attempts(request))
        }
        try:
            token = self.get_model().objects.select_related("user").annotate(**failures).get(key=key)
        except self.get_model().DoesNotExist:
            raise AuthenticationFailed(_("Invalid token.")) from None
        counted = max((getattr(token, name) or 0 for name in failures), default=0)
        if counted >= get_failure_limit(request, None):
            raise Throttled(wait=retry_after_seconds(request))
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
