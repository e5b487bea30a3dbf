from rest_framework.routers import DefaultRouter

from .views import ArtifactViewSet, ModelVersionViewSet, RegisteredModelViewSet

app_name = "api"

router = DefaultRouter()
router.register("registered-models", RegisteredModelViewSet, basename="registeredmodel")
router.register("versions", ModelVersionViewSet, basename="version")
router.register("artifacts", ArtifactViewSet, basename="artifact")

urlpatterns = router.urls
