from django.apps import AppConfig


class GetiIntegrationConfig(AppConfig):
    name = "geti_integration"
    verbose_name = "Intel Geti integration"
    default_auto_field = "django.db.models.BigAutoField"
