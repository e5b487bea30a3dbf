from rest_framework.routers import DefaultRouter

from .api import DeliveryViewSet, EventTypeViewSet, SubscriptionViewSet

app_name = "webhooks-api"

router = DefaultRouter()
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("event-types", EventTypeViewSet, basename="event-type")

urlpatterns = router.urls
