"""
Settings for the Model Registry.

Everything that differs between a laptop and production comes from environment variables with
safe defaults: with nothing set, the registry runs on SQLite and local files under ``var/``.
README.md lists every variable.
"""

import datetime
import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REGISTRY_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    """Read a boolean variable; refuse values that are neither true nor false instead of guessing."""
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name, default):
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from None


DEBUG = env_bool("DEBUG", False)
# The key that signs sessions, CSRF tokens and password-reset links: SECRET_KEY, or the file
# SECRET_KEY_FILE names (`make run` and the Docker image create one and keep it under var/).
SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not SECRET_KEY and os.environ.get("SECRET_KEY_FILE") and Path(os.environ["SECRET_KEY_FILE"]).is_file():
    SECRET_KEY = Path(os.environ["SECRET_KEY_FILE"]).read_text().strip()
# Without one, a random key for this process only: management commands (migrate, check, the
# tests) need no key, but nothing they sign outlives them. Serving refuses to start with it
# (registry_project/wsgi.py) and `check --deploy` reports it, so no deployment runs on a key that
# is public or that differs between its processes.
SECRET_KEY_MISSING = not SECRET_KEY
if SECRET_KEY_MISSING:
    SECRET_KEY = secrets.token_urlsafe(50)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Behind TLS (docs/deployment.md): the proxy's header that says a request came over HTTPS (e.g.
# X-Forwarded-Proto; the proxy must set it on every request, overwriting the client's), HTTPS
# redirects, cookies sent over HTTPS only, and HSTS.
if os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + os.environ["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_"),
        "https",
    )
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Health checks come from inside the deployment, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_tasks",
    "django_tasks_db",
    "models_app",
    "geti_integration",
    "webhooks",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before everything that writes a body; it leaves streamed file downloads alone.
    "registry_project.middleware.GZipPagesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "models_app.middleware.RefuseNulMiddleware",
    # An ETag on every GET answered in full, and 304 to a client that already has that body
    # (an edge device polling its alias): after the compression of the body, before the rest.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registry_project.middleware.CSPMiddleware",
    "models_app.uploads.ReleaseStoredUploadsMiddleware",
    # Last, as django-axes requires: it answers a locked-out client (models_app.throttling).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "registry_project.wsgi.application"

# Database: DATABASE_URL (postgres://user:pass@host:5432/name), else SQLite under var/.
# The statements run on every request (token authentication, the prepared lists) are prepared
# on each connection, so PostgreSQL plans them once; off for a pooler in transaction mode that
# cannot keep prepared statements (PgBouncer before 1.21, or without max_prepared_statements).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'registry.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Writers wait for each other instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Transactions take the write lock when they start: a deferred transaction that reads and
    # then writes (moving an alias under a row lock does) gets "database is locked" at once when
    # another writer is in progress, instead of waiting its turn.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
else:
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    if DATABASE_PREPARED_STATEMENTS:
        # Django turns psycopg's preparing off (None); a threshold no statement reaches leaves
        # Django's own queries unprepared while the cursor for the repeated statements
        # (models_app.lib.queries.planned_once_cursor) prepares each of its own.
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
    # PostgreSQL's default random_page_cost (4) prices index reads for spinning disks. With the
    # registry's tables on SSD or in memory, it made the planner read all 100,000 artifacts
    # sequentially for some searches instead of looking up the few matching versions' artifacts
    # by index (bench/README.md has the figures). Set per connection; empty leaves the server's
    # value (needed behind a PgBouncer that refuses the "options" startup parameter).
    RANDOM_PAGE_COST = os.environ.get("DATABASE_RANDOM_PAGE_COST", "1.1").strip()
    if RANDOM_PAGE_COST:
        options = DATABASES["default"]["OPTIONS"]
        options["options"] = f"{options.get('options', '')} -c random_page_cost={float(RANDOM_PAGE_COST)}".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The variant index carries version_id as an INCLUDE column so PostgreSQL answers variant counts
# from the index alone; SQLite builds the same index without it, which is all this warning says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Object storage. With S3_BUCKET set, model files go to S3 (AWS, MinIO, ...); otherwise to
# var/media/. Only models_app.storage looks the "artifacts" alias up, at call time.
S3_BUCKET = os.environ.get("S3_BUCKET", "")
# The S3 address clients use for presigned URLs, when it differs from S3_ENDPOINT_URL (the
# registry's own, e.g. http://minio:9000 inside Docker Compose vs http://localhost:9000 outside).
S3_PUBLIC_ENDPOINT_URL = os.environ.get("S3_PUBLIC_ENDPOINT_URL", "")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"


def s3_storage_options(bucket, endpoint_url="", region="", access_key="", secret_key=""):
    """OPTIONS for django-storages' S3Storage; path-style addressing so MinIO works as well as AWS."""
    from botocore.config import Config

    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url or None,
        "region_name": region or None,
        "access_key": access_key or None,
        "secret_key": secret_key or None,
        "addressing_style": "path",
        "signature_version": "s3v4",
        "file_overwrite": False,
        "default_acl": None,
        "querystring_expire": env_int("S3_PRESIGN_SECONDS", 900),
        "client_config": Config(
            # Every S3 call is bounded: a connect and a read timeout, and a few retries.
            connect_timeout=env_int("S3_CONNECT_TIMEOUT", 5),
            read_timeout=env_int("S3_READ_TIMEOUT", 10),
            retries={"max_attempts": env_int("S3_MAX_ATTEMPTS", 2), "mode": "standard"},
            # The registry hashes every file itself and S3 checks each request's CRC32 checksum,
            # so the SigV4 signature need not hash the body again (as boto3 already skips on https).
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            signature_version="s3v4",
        ),
    }


if S3_BUCKET:
    ARTIFACT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": s3_storage_options(
            S3_BUCKET,
            os.environ.get("S3_ENDPOINT_URL", ""),
            os.environ.get("S3_REGION", ""),
            os.environ.get("S3_ACCESS_KEY_ID", ""),
            os.environ.get("S3_SECRET_ACCESS_KEY", ""),
        ),
    }
else:
    ARTIFACT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "artifacts": ARTIFACT_STORAGE,
}

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

# Uploads: every file part is hashed and size-checked while it streams to a temporary file, so
# a model is never held in memory and an oversized one is refused before it is stored.
# On S3 the first handler streams each file straight into a multipart upload instead.
FILE_UPLOAD_HANDLERS = ["models_app.uploads.S3StreamingUploadHandler", "models_app.uploads.HashingUploadHandler"]
FILE_UPLOAD_TEMP_DIR = os.environ.get("FILE_UPLOAD_TEMP_DIR") or None
# After an S3 call timed out or could not connect, S3 calls fail at once for this long
# (models_app.storage).
REGISTRY_STORAGE_BREAKER_SECONDS = env_int("REGISTRY_STORAGE_BREAKER_SECONDS", 15)
REGISTRY_MAX_UPLOAD_BYTES = env_int("REGISTRY_MAX_UPLOAD_BYTES", 20 * 1024**3)
REGISTRY_UPLOAD_PART_BYTES = env_int("REGISTRY_UPLOAD_PART_BYTES", 8 * 1024**2)
# Big files: clients upload straight to S3 through presigned part URLs (/api/v1/uploads/); the
# web upload page does so above this size. Unfinished sessions expire (``prune_uploads``).
REGISTRY_DIRECT_UPLOAD_THRESHOLD = env_int("REGISTRY_DIRECT_UPLOAD_THRESHOLD", 100 * 1024**2)
REGISTRY_UPLOAD_SESSION_HOURS = env_int("REGISTRY_UPLOAD_SESSION_HOURS", 24)
# A completion running longer than this has lost its process: ``prune_uploads`` fails it. The
# completion reads the whole file back for its sha256, so the bound must exceed that read for the
# largest file (5 TB at 100 MiB/s is about 15 hours).
REGISTRY_UPLOAD_COMPLETING_MINUTES = env_int("REGISTRY_UPLOAD_COMPLETING_MINUTES", 24 * 60)
# Downloads: "proxy" streams the file through the registry; "redirect" answers 302 to a
# short-lived presigned S3 URL (S3 only). ``?mode=`` on a download overrides it per request.
REGISTRY_DOWNLOAD_MODE = os.environ.get("REGISTRY_DOWNLOAD_MODE", "proxy").strip().lower()
if REGISTRY_DOWNLOAD_MODE not in {"proxy", "redirect"}:
    raise ImproperlyConfigured("REGISTRY_DOWNLOAD_MODE must be proxy or redirect.")
# Lists count exactly up to this many matching rows; past it, PostgreSQL's planner estimate is
# used (``X-Count-Estimated: true``) so a page never costs a full count.
REGISTRY_EXACT_COUNT_LIMIT = env_int("REGISTRY_EXACT_COUNT_LIMIT", 10_000)
# First pages of the most asked-for lists run SQL compiled once per kind of request
# (models_app/api/prepared.py); off, every list takes the general path.
REGISTRY_PREPARED_LISTS = env_bool("REGISTRY_PREPARED_LISTS", True)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Reads are open unless REGISTRY_REQUIRE_LOGIN is true; writes always need a user with the
# matching Django model permission.
REGISTRY_REQUIRE_LOGIN = env_bool("REGISTRY_REQUIRE_LOGIN", False)
# The Intel-compatible API (/models, ...) authenticates writes like /api/v1/. Intel's service had
# no authentication at all; a trusted deployment whose Intel clients cannot send a token may set
# this to accept their writes anonymously.
REGISTRY_INTEL_COMPAT_ANONYMOUS_WRITES = env_bool("REGISTRY_INTEL_COMPAT_ANONYMOUS_WRITES", False)
REGISTRY_DOWNLOAD_CHUNK_BYTES = env_int("REGISTRY_DOWNLOAD_CHUNK_BYTES", 1024 * 1024)
# Aliases whose moves need the "promote_alias" permission; other aliases need "change_alias".
REGISTRY_PROTECTED_ALIASES = env_list("REGISTRY_PROTECTED_ALIASES", "production")
# The catalogue's facet counts are cached this long (0: never); the list itself is always live.
REGISTRY_FACET_CACHE_SECONDS = env_int("REGISTRY_FACET_CACHE_SECONDS", 60)
# Inspection of uploaded model files (docs/inspection.md): at most this much of an IR's XML, or
# of an ONNX graph without its weights, is parsed in memory; files past the second limit are not
# read at all.
REGISTRY_INSPECTION_MAX_GRAPH_BYTES = env_int("REGISTRY_INSPECTION_MAX_GRAPH_BYTES", 64 * 1024**2)
REGISTRY_INSPECTION_MAX_FILE_BYTES = env_int("REGISTRY_INSPECTION_MAX_FILE_BYTES", 2 * 1024**3)

# Background jobs (Geti imports): django-tasks with its database backend, so jobs are rows in the
# registry's own database and no message broker is needed. `manage.py db_worker` runs them;
# `make run` and docker-compose start one.
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# Intel Geti integration. GETI_HOST, GETI_TOKEN, GETI_SERVER_API_VERSION, GETI_ORGANIZATION_ID,
# GETI_WORKSPACE_ID and GETI_SERVER_SSL_VERIFY are read when used (geti_integration.importer),
# not here, so the integration can be switched on without touching settings. docs/geti.md.
# How an import fetches the model: "export" (the optimized model's own zip, falling back to a
# code deployment when the server has no export route) or "deployment" (always a deployment).
GETI_DOWNLOAD_ROUTE = os.environ.get("GETI_DOWNLOAD_ROUTE", "export")
# Longest wait for Geti to prepare a code deployment before the import fails.
GETI_DEPLOYMENT_DEADLINE_SECONDS = env_int("GETI_DEPLOYMENT_DEADLINE_SECONDS", 900)
GETI_DEPLOYMENT_POLL_SECONDS = 1.0  # the first wait between polls; it grows by half each poll
# A running import's worker writes its heartbeat every second; one silent this long has no worker
# left (it died) and is marked failed, by a watch queued with the job or by any worker starting.
GETI_IMPORT_STALE_SECONDS = env_int("GETI_IMPORT_STALE_SECONDS", 120)

# Webhooks (docs/webhooks.md): `manage.py deliver_webhooks --loop` sends them.
REGISTRY_WEBHOOK_TIMEOUT_SECONDS = env_int("REGISTRY_WEBHOOK_TIMEOUT_SECONDS", 10)
REGISTRY_WEBHOOK_MAX_ATTEMPTS = env_int("REGISTRY_WEBHOOK_MAX_ATTEMPTS", 8)
REGISTRY_WEBHOOK_RETRY_BASE_SECONDS = env_int("REGISTRY_WEBHOOK_RETRY_BASE_SECONDS", 30)
REGISTRY_WEBHOOK_RETRY_MAX_SECONDS = env_int("REGISTRY_WEBHOOK_RETRY_MAX_SECONDS", 3600)
REGISTRY_WEBHOOK_DISABLE_AFTER_FAILURES = env_int("REGISTRY_WEBHOOK_DISABLE_AFTER_FAILURES", 20)
REGISTRY_WEBHOOK_SECRET_OVERLAP_SECONDS = env_int("REGISTRY_WEBHOOK_SECRET_OVERLAP_SECONDS", 24 * 3600)
REGISTRY_WEBHOOK_RETENTION_DAYS = env_int("REGISTRY_WEBHOOK_RETENTION_DAYS", 30)
REGISTRY_WEBHOOK_POLL_SECONDS = float(os.environ.get("REGISTRY_WEBHOOK_POLL_SECONDS", "1"))
# Loopback, private, link-local and unique-local destinations are refused unless inside one of
# these networks (comma-separated CIDRs, e.g. 10.20.0.0/16 for an internal CI server).
REGISTRY_WEBHOOK_ALLOWED_NETWORKS = env_list("REGISTRY_WEBHOOK_ALLOWED_NETWORKS")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Password and token guessing (models_app.throttling): after this many failures from one client
# address, or for one account, both are refused for the cool-off.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("REGISTRY_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("REGISTRY_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = "models_app.throttling.lockout_parameters"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "models_app.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "models_app.throttling.client_ip"
# Behind a reverse proxy, the header it appends the client's address to (e.g. X-Forwarded-For);
# empty: the connection's address. Never set it when clients can reach gunicorn directly.
REGISTRY_CLIENT_IP_HEADER = os.environ.get("REGISTRY_CLIENT_IP_HEADER", "").strip()

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "models_app:catalogue"
LOGOUT_REDIRECT_URL = "models_app:catalogue"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "models_app.throttling.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["models_app.lib.permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "models_app.api.filters.SearchFilter",
        "models_app.api.filters.OrderingFilter",
    ],
    # The multipart parser that lets the streaming upload handler abort on any parse error.
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "models_app.uploads.StreamingMultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "models_app.lib.renderers.ORJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "models_app.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "models_app.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # "format" is a metadata filter (openvino, onnx, ...), not a renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Model Registry API",
    "DESCRIPTION": (
        "Register, version, search, download and delete AI models. A registered model has "
        "versions; a version has artifacts, one file per precision, target device and format."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStateEnum": "webhooks.models.Delivery.State",
        "UploadSessionStateEnum": "models_app.models.UploadSession.State",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "models_app.api.schema.add_error_responses",
    ],
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar): the docs work
    # on sites without internet access, at the version pinned in requirements.txt.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy: scripts and styles only from our own static files, no inline code
# (the pages keep their JavaScript in static/js), nothing framed, forms post to us only. The
# upload page adds the S3 endpoint its browser sends direct-upload parts to (views.upload).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {name: {"level": "WARNING"} for name in ("botocore", "urllib3", "werkzeug", "s3transfer", "axes")},
}
