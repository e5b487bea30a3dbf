"""The registry's access rule as a DRF permission, shared by /api/v1 and the Intel routes."""

from django.conf import settings
from rest_framework.permissions import DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """Writes need the matching Django model permission (add/change/delete).

    Reads are open to everyone unless ``REGISTRY_REQUIRE_LOGIN`` is on, in which case any
    logged-in user may read. Read at request time so the setting can change without a restart
    of the test process.
    """

    authenticated_users_only = False

    def has_permission(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return bool(not settings.REGISTRY_REQUIRE_LOGIN or (request.user and request.user.is_authenticated))
        if not (request.user and request.user.is_authenticated):
            return False
        return super().has_permission(request, view)


def can_read(request):
    return bool(not settings.REGISTRY_REQUIRE_LOGIN or (request.user and request.user.is_authenticated))
