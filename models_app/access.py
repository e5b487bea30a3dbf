"""Who may read the registry and who may add files to it: each rule written once, for every face
(pages, /api/v1, the Intel routes, Geti's pages and API).

The settings are read at call time, so a change (in a test, say) needs no restart.
"""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

ADD_ARTIFACT = "models_app.add_artifact"


def is_logged_in(user):
    return bool(user and user.is_authenticated)


def can_read(user):
    """Reads are open to everyone unless ``REGISTRY_REQUIRE_LOGIN`` is on; then any logged-in user
    may read."""
    return not settings.REGISTRY_REQUIRE_LOGIN or is_logged_in(user)


def can_add_artifacts(user):
    """Registering a file (an upload, a direct upload, a Geti import) needs the add-artifact
    permission."""
    return is_logged_in(user) and user.has_perm(ADD_ARTIFACT)


def read_access(view):
    """For pages: a visitor who may not read is sent to the login, then back."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_read(request.user):
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def add_artifact_access(view):
    """For pages that register files: the login for an anonymous visitor, 403 for a user without
    the add-artifact permission."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_logged_in(request.user):
            return redirect_to_login(request.get_full_path())
        if not can_add_artifacts(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
