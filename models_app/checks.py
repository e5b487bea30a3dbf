"""System checks for settings Django's own checks do not know about."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_secret_key_is_set(app_configs, **kwargs):
    """The per-process key settings.py falls back to passes Django's own key checks (it is long and
    random), yet signs nothing another process or the next start accepts."""
    if getattr(settings, "SECRET_KEY_MISSING", False):
        return [
            Error(
                "SECRET_KEY is not set: each process signs sessions and CSRF tokens with its own random key.",
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) to a long random string.",
                id="models_app.E001",
            )
        ]
    return []
