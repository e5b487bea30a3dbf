from django.urls import path

from . import views

app_name = "models_app"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("models/<str:name>/", views.registered_model_detail, name="registeredmodel-detail"),
    path("models/<str:name>/versions/<str:version>/", views.version_detail, name="version-detail"),
    path("models/<str:name>/aliases/", views.alias_set, name="alias-set"),
    path("models/<str:name>/aliases/<str:alias>/rollback/", views.alias_rollback, name="alias-rollback"),
    path("models/<str:name>/aliases/<str:alias>/delete/", views.alias_delete, name="alias-delete"),
]
