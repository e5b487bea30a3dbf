"""The registry's access rule (``models_app.access``) as a DRF permission, shared by /api/v1 and
the Intel routes."""

from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions

from ..access import can_read, is_logged_in


class ModelPermissions(DjangoModelPermissions):
    """Writes need the matching Django model permission (add/change/delete).

    Reads follow the registry's read rule (``access.can_read``).
    """

    authenticated_users_only = False
    # The model each view (and action) writes, found once: DRF's own check builds the view's
    # whole queryset on every write (a list's annotated query) only to read its model.
    _models = {}

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return can_read(request.user)
        if not is_logged_in(request.user):
            return False
        if getattr(view, "_ignore_model_permissions", False):
            return True
        return request.user.has_perms(self.get_required_permissions(request.method, self.model_of(view)))

    def model_of(self, view):
        key = (type(view), getattr(view, "action", None))
        if key not in self._models:
            self._models[key] = self._queryset(view).model
        return self._models[key]
