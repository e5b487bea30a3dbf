"""The WSGI application gunicorn serves (registry_project/gunicorn.conf.py).

Serving refuses to start without a configured SECRET_KEY: every process would sign sessions and
CSRF tokens with its own random key (registry_project/settings.py), so logins would fail at
random between gunicorn's workers and end at each restart.
"""

import os
import sys

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

if settings.SECRET_KEY_MISSING:
    sys.exit(
        "SECRET_KEY is not set: set SECRET_KEY (or SECRET_KEY_FILE) to a long random string; "
        "`make run` keeps one in var/secret-key."
    )

application = get_wsgi_application()
