from rest_framework.routers import DefaultRouter

from .api import GetiProjectViewSet, ImportJobViewSet

app_name = "geti-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("projects", GetiProjectViewSet, basename="project")
router.register("imports", ImportJobViewSet, basename="import")

urlpatterns = router.urls
