from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..access import can_add_artifacts, can_read, is_logged_in
from ..lib.permissions import ModelPermissions
from ..models import Alias


class ChangePermissions(ModelPermissions):
    """For POST actions that change an existing object (archive, restore): the change permission."""

    perms_map = {**ModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class CreatePermissions(ModelPermissions):
    """For the raw-body upload, whose PUT (what ``curl -T`` sends) creates like its POST: the add
    permission for both (docs/permissions.md)."""

    perms_map = {**ModelPermissions.perms_map, "PUT": ["%(app_label)s.add_%(model_name)s"]}


class AliasPermissions(ModelPermissions):
    """Reads as everywhere else; any write to an alias named in REGISTRY_PROTECTED_ALIASES needs
    ``promote_alias``, a write to any other alias needs ``change_alias``."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return can_read(request.user)
        if not is_logged_in(request.user):
            return False
        name = view.kwargs.get("alias") or (request.data.get("name") if hasattr(request.data, "get") else "")
        return request.user.has_perm(Alias.permission_for(name))


class ReadOnly(BasePermission):
    """Read-only endpoints (compare): the registry's read policy, and no writes at all."""

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS and can_read(request.user)


class CanAddArtifacts(BasePermission):
    """For endpoints whose every call registers files (direct uploads, Geti imports): the
    add-artifact permission (``access.can_add_artifacts``)."""

    def has_permission(self, request, view):
        return can_add_artifacts(request.user)
