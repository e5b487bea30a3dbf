"""The registry's access rule (``models_app.access``) as a DRF permission, shared by /api/v1 and
the Intel routes."""

from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions

from ..access import can_read, is_logged_in


class ModelPermissions(DjangoModelPermissions):
    """Writes need the matching Django model permission (add/change/delete).

    Reads follow the registry's read rule (``access.can_read``).
    """

    authenticated_users_only = False

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return can_read(request.user)
        if not is_logged_in(request.user):
            return False
        return super().has_permission(request, view)
