"""Who is calling /v2/, in the ways OCI clients authenticate.

- ``Basic`` with a user name and that user's API token (``manage.py issue_token``) as password:
  what ``docker login``, Kubernetes image pull secrets and ``skopeo --creds`` send.
- The bearer-token flow: a 401 carries ``WWW-Authenticate: Bearer realm=".../v2/token",
  service=..., scope=...``; the client fetches a token there (with its Basic credentials, or none
  for an anonymous pull) and retries with ``Bearer <token>``. The token is a signed, expiring
  note of the user's id; permissions are checked on each request, not carried in the token.
- ``Token <key>`` or ``Bearer <key>`` with the API token itself, as the REST API takes it.

Reads follow the registry's read rule (open unless REGISTRY_REQUIRE_LOGIN); pushes need the
permission to add artifacts, as uploads through /api/v1 do.
"""

import base64
import binascii

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core import signing
from rest_framework.authtoken.models import Token

from .. import access
from .errors import OCIError

TOKEN_SALT = "models_app.oci.token"
TOKEN_SECONDS = 3600


def issue_token(user):
    """A bearer token for ``user`` (anonymous when not authenticated), valid TOKEN_SECONDS."""
    return signing.dumps({"u": user.pk if user.is_authenticated else None}, salt=TOKEN_SALT, compress=True)


def _user_of_api_token(key, username=None):
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active or (username is not None and token.user.get_username() != username):
        return None
    return token.user


def _user_of_bearer(value):
    try:
        claims = signing.loads(value, salt=TOKEN_SALT, max_age=TOKEN_SECONDS)
    except signing.BadSignature:
        return _user_of_api_token(value)
    if claims.get("u") is None:
        return AnonymousUser()
    return get_user_model().objects.filter(pk=claims["u"], is_active=True).first()


def _user_of_basic(value):
    try:
        username, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return _user_of_api_token(secret, username)


def authenticate(request, challenge):
    """The caller's user (AnonymousUser without credentials); credentials that do not check out
    answer 401 with ``challenge`` rather than falling back to anonymous access."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if not scheme:
        return AnonymousUser()
    reader = {"basic": _user_of_basic, "bearer": _user_of_bearer, "token": _user_of_api_token}.get(scheme)
    user = reader(value) if reader and value else None
    if user is None:
        raise OCIError("UNAUTHORIZED", "The credentials are not valid.", headers=challenge)
    return user


def challenge(request, repository=None, actions="pull"):
    """The WWW-Authenticate header that sends a client to the token endpoint."""
    host = request.get_host()
    realm = request.build_absolute_uri("/v2/token")
    value = f'Bearer realm="{realm}",service="{host}"'
    if repository:
        value += f',scope="repository:{repository}:{actions}"'
    return {"WWW-Authenticate": value}


# Pulls follow the registry's one read rule; pushes register artifacts, so they need what uploads
# through /api/v1 need.
can_read = access.can_read
can_push = access.can_add_artifacts


def check_pull(request, repository=None):
    """The caller, when they may read; a 401 otherwise."""
    header = challenge(request, repository, "pull")
    user = authenticate(request, header)
    if not can_read(user):
        raise OCIError("UNAUTHORIZED", "Log in to read from this registry.", headers=header)
    return user


def check_push(request, repository):
    """The caller, when they may push (add artifacts); a 401 without credentials, 403 without
    the permission."""
    header = challenge(request, repository, "pull,push")
    user = authenticate(request, header)
    if not user.is_authenticated:
        raise OCIError("UNAUTHORIZED", "Log in to push.", headers=header)
    if not can_push(user):
        raise OCIError("DENIED", "You may not add artifacts to this registry.")
    return user


def token_user(request):
    """The user a token is asked for: Basic credentials, or anonymous (refused when reads need a
    login, since an anonymous token could do nothing)."""
    user = authenticate(request, {"WWW-Authenticate": f'Basic realm="{request.get_host()}"'})
    if not can_read(user):
        raise OCIError(
            "UNAUTHORIZED",
            "Log in with your user name and API token.",
            headers={"WWW-Authenticate": f'Basic realm="{request.get_host()}"'},
        )
    return user
