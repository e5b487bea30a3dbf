"""Page URLs. Pages live under short prefixes (/m/, /compare/, /upload/) so that /models/ stays
free for the Intel-compatible API."""

from django.urls import path

from . import views

app_name = "models_app"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("m/<str:name>/", views.registered_model_detail, name="registeredmodel-detail"),
    path("m/<str:name>/v/<str:version>/", views.version_detail, name="version-detail"),
    path("compare/", views.compare, name="compare"),
    path("upload/", views.upload, name="upload"),
    path("m/<str:name>/aliases/", views.alias_set, name="alias-set"),
    path("m/<str:name>/aliases/<str:alias>/rollback/", views.alias_rollback, name="alias-rollback"),
    path("m/<str:name>/aliases/<str:alias>/delete/", views.alias_delete, name="alias-delete"),
]
