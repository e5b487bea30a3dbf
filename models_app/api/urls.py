from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import (
    AliasViewSet,
    ArtifactFileUploadViewSet,
    ArtifactViewSet,
    AuditEntryViewSet,
    CompareView,
    ModelVersionViewSet,
    RegisteredModelVersionViewSet,
    RegisteredModelViewSet,
    UploadSessionViewSet,
)

app_name = "api"

router = DefaultRouter()
router.register("registered-models", RegisteredModelViewSet, basename="registeredmodel")
router.register("versions", ModelVersionViewSet, basename="version")
router.register("artifacts", ArtifactViewSet, basename="artifact")
router.register("audit", AuditEntryViewSet, basename="auditentry")
router.register("uploads", UploadSessionViewSet, basename="upload")

ALIASES = "registered-models/<str:name>/aliases/"
urlpatterns = [
    path(ALIASES, AliasViewSet.as_view({"get": "list", "post": "create"}), name="alias-list"),
    path(
        ALIASES + "<str:alias>/",
        AliasViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="alias-detail",
    ),
    path(ALIASES + "<str:alias>/rollback/", AliasViewSet.as_view({"post": "rollback"}), name="alias-rollback"),
    path(ALIASES + "<str:alias>/history/", AliasViewSet.as_view({"get": "history"}), name="alias-history"),
    path(ALIASES + "<str:alias>/download/", AliasViewSet.as_view({"get": "download"}), name="alias-download"),
    path(
        "registered-models/<str:name>/versions/<str:version>/",
        RegisteredModelVersionViewSet.as_view({"get": "retrieve"}),
        name="registeredmodel-version",
    ),
    path("compare/", CompareView.as_view(), name="compare"),
    # No trailing slash: `curl -T model.xml .../artifacts/upload/?...` appends the file's name.
    path(
        "artifacts/upload/<str:filename>",
        ArtifactFileUploadViewSet.as_view({"put": "create", "post": "create"}),
        name="artifact-upload",
    ),
    *router.urls,
]
