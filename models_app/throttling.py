"""Limits on guessing passwords and API tokens.

django-axes counts failed sign-ins per client address and per account in the database, so every
gunicorn process and every replica sees the same count; past ``AXES_FAILURE_LIMIT`` failures the
client or the account is refused with a 429 and ``Retry-After`` until the cool-off ends. Failed API
tokens are counted the same way (per client: a token names no account), so the login pages, the
admin and the API share one limit.
"""

from axes.attempts import get_cool_off_threshold
from axes.conf import settings as axes_settings
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.db import connections
from django.db.models import Func, Subquery
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, Throttled

from .lib.http import error_body
from .lib.queries import StatementRefused, run_planned


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
        statement = token_statement(handler, request)
        try:
            row = statement.run(request, key) if statement is not None else token_query(handler, request, key).first()
        except StatementRefused:
            _token_statement.update(dict.fromkeys(_token_statement))  # the ORM's query from now on
            row = token_query(handler, request, key).first()
        if row is None:
            raise AuthenticationFailed(_("Invalid token.")) from None
        token, counted = token_from_row(row)
        if counted >= get_failure_limit(request, None):
            raise Throttled(wait=retry_after_seconds(request))
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)


def token_query(handler, request, key):
    """The token, its user's columns and the client's failure counts (one per lockout
    parameter), as one row."""
    failures = [
        Subquery(attempts.order_by().annotate(total=Func("failures_since_start", function="SUM")).values("total"))
        for attempts in handler.get_user_attempts(request)
    ]
    return (
        Token.objects.filter(key=key)
        .annotate(**{f"axes_failures_{n}": failure for n, failure in enumerate(failures)})
        .values_list(
            *TOKEN_COLUMNS,
            *(f"user__{name}" for name in user_columns()),
            *(f"axes_failures_{n}" for n in range(len(failures))),
        )
    )


TOKEN_COLUMNS = ("key", "user_id", "created")


def user_columns():
    return [field.attname for field in get_user_model()._meta.concrete_fields]


def token_from_row(row):
    """The token with its user, and the highest failure count, from a ``token_query`` row."""
    users = user_columns()
    token = Token.from_db(Token.objects.db, TOKEN_COLUMNS, row[: len(TOKEN_COLUMNS)])
    user_row = row[len(TOKEN_COLUMNS) : len(TOKEN_COLUMNS) + len(users)]
    token.user = get_user_model().from_db(token._state.db, users, user_row)
    return token, max((count or 0 for count in row[len(TOKEN_COLUMNS) + len(users) :]), default=0)


class TokenStatement:
    """``token_query`` compiled once: every API request with a token runs it, and compiling it
    (a join, a subquery per lockout parameter) cost more than running it.

    Its parameters are the token, the client's address and the start of the cool-off, each
    computed at run time the way the ORM and django-axes compute them. ``token_statement`` builds
    it from two sample requests and keeps it only if their compiled parameters are exactly those
    values; any other lockout set-up takes the ORM path."""

    SOURCES = {
        "key": lambda request, key: key,
        "ip_address": lambda request, key: AccessAttempt._meta.get_field("ip_address").get_db_prep_value(
            request.axes_ip_address, connections[AccessAttempt.objects.db], prepared=False
        ),
        "cool_off": lambda request, key: AccessAttempt._meta.get_field("attempt_time").get_db_prep_value(
            get_cool_off_threshold(request), connections[AccessAttempt.objects.db], prepared=False
        ),
    }

    def __init__(self, sql, sources):
        self.sql, self.sources = sql, sources

    def values(self, request, key):
        return [self.SOURCES[source](request, key) for source in self.sources]

    def run(self, request, key):
        values = self.values(request, key)

        def work(cursor):
            cursor.execute(self.sql, values)
            return cursor.fetchone()

        return run_planned(Token.objects.db, work)

    @classmethod
    def build(cls, handler):
        compiled = []
        for address, key in (("192.0.2.1", "prepared-a"), ("2001:db8::2", "prepared-b")):
            sample = RequestFactory().get("/", REMOTE_ADDR=address)
            AxesProxyHandler.update_request(sample)
            sql, params = token_query(handler, sample, key).query.sql_with_params()
            found = cls.attribute(params, sample, key)
            if found is None or len(params) != 3:
                return None
            compiled.append((sql, found))
        (sql_a, sources_a), (sql_b, sources_b) = compiled
        if sql_a != sql_b or sources_a != sources_b:
            return None
        return cls(sql_a, sources_a)

    @classmethod
    def attribute(cls, params, request, key):
        """Which source gives each parameter; None if one is not any of them."""
        values = {name: source(request, key) for name, source in cls.SOURCES.items()}
        sources = []
        for param in params:
            matches = [name for name, value in values.items() if value == param]
            if len(matches) != 1:
                return None
            sources.append(matches[0])
        return sources


_token_statement = {}


def token_statement(handler, request):
    """The prepared token query for requests like ``request`` (a token names no account, so only
    the client's address is counted), built on first use; None where it cannot be prepared."""
    if lockout_parameters(request) != ["ip_address"]:
        return None
    key = (type(handler), axes_settings.AXES_COOLOFF_TIME is None, get_user_model())
    if key not in _token_statement:
        _token_statement[key] = TokenStatement.build(handler)
    return _token_statement[key]
