"""Shared fixtures: a real S3 endpoint over HTTP, users with permissions, API clients.

Storage tests talk to moto's standalone S3 server, started once per session on a free loopback
port, unless ``S3_ENDPOINT_URL`` names another endpoint (a MinIO, say). Nothing here mocks the
ORM or the storage.
"""

import io
import os
import socket
import threading
import uuid
import zipfile

import boto3
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from registry_project.settings import s3_storage_options

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_storages(endpoint_url, bucket):
    """A STORAGES setting whose "artifacts" alias is an S3 bucket at ``endpoint_url``."""
    from django.conf import settings

    options = s3_storage_options(
        bucket,
        endpoint_url,
        os.environ.get("S3_REGION", "us-east-1"),
        os.environ.get("S3_ACCESS_KEY_ID", os.environ["AWS_ACCESS_KEY_ID"]),
        os.environ.get("S3_SECRET_ACCESS_KEY", os.environ["AWS_SECRET_ACCESS_KEY"]),
    )
    return {**settings.STORAGES, "artifacts": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file, not shared-cache memory: in memory, two connections
    fail at once with "table is locked" instead of waiting for each other as they do on the file
    the registry really uses, and the concurrency tests need that real behaviour."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


@pytest.fixture(scope="session")
def s3_endpoint():
    """URL of a live S3 endpoint: $S3_ENDPOINT_URL, or a moto server started for this session."""
    if os.environ.get("S3_ENDPOINT_URL"):
        yield os.environ["S3_ENDPOINT_URL"]
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket_name(s3_endpoint):
    name = os.environ.get("S3_TEST_BUCKET", f"registry-test-{uuid.uuid4().hex[:8]}")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    try:
        client.create_bucket(Bucket=name)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return name


@pytest.fixture(scope="session", autouse=True)
def _artifacts_on_s3(s3_endpoint, s3_bucket_name):
    """Every test stores artifacts in the S3 bucket unless it asks for local files."""
    with override_settings(STORAGES=s3_storages(s3_endpoint, s3_bucket_name)):
        yield


@pytest.fixture
def bucket(s3_endpoint, s3_bucket_name):
    """The test bucket (boto3 resource), emptied after the test so each test sees only its objects."""
    resource = boto3.resource("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = resource.Bucket(s3_bucket_name)
    bucket.objects.all().delete()
    yield bucket
    bucket.objects.all().delete()


def bucket_keys(bucket):
    return sorted(obj.key for obj in bucket.objects.all())


def open_multipart_uploads(bucket):
    return bucket.meta.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])


def on_a_connection_of_its_own(work):
    """Run ``work`` in a thread, so its queries commit on another connection (another process,
    or another host), and re-raise what it raised."""
    errors = []

    def run():
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def right_after(sql_start, work):
    """An execute wrapper that runs ``work`` on a connection of its own just after the first query
    starting with ``sql_start``: another writer acts between this one's read and its write."""
    done = []

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith(sql_start) and not done:
            done.append(sql)
            on_a_connection_of_its_own(work)
        return result

    return wrapper


@pytest.fixture
def small_parts(settings):
    """S3's smallest part size, so a few MiB make a multipart upload of several parts."""
    settings.REGISTRY_UPLOAD_PART_BYTES = 5 * 1024 * 1024


@pytest.fixture
def local_storage(tmp_path, settings):
    """Switch artifacts to local files under a temporary directory (the zero-set-up default)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _storage_breaker_closed():
    """The storage breaker is process-wide: a test that made storage look down must not leave the
    next one failing at once with a 503."""
    from models_app import storage

    yield
    storage._breaker["open_until"] = 0.0


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


ALL_MODEL_PERMS = [
    f"{action}_{model}"
    for action in ("add", "change", "delete", "view")
    for model in ("registeredmodel", "modelversion", "artifact", "alias")
]


@pytest.fixture
def user(django_user_model):
    """A user allowed to add, change and delete registry objects (not a superuser)."""
    return grant(django_user_model.objects.create_user("alice", password="pw-alice"), *ALL_MODEL_PERMS)


@pytest.fixture
def api_client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def user_client(user):
    """A Django test client logged in as ``user`` through a real session, as a browser is on the
    pages and the admin."""
    client = Client()
    client.force_login(user)
    return client


def count_queries(client, url, data=None):
    """How many queries a GET of ``url`` costs; it must answer 200. Tests compare the count with
    few rows and with many, so a list whose queries grow with its rows fails."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, data)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


ZIP_TIME = (2025, 1, 3, 0, 0, 0)


class _WriteOnly:
    """A file object without tell/seek, so zipfile streams (data descriptors) instead of seeking."""

    def __init__(self, write):
        self._write = write

    def write(self, data):
        self._write(data)
        return len(data)

    def flush(self):
        pass


def write_zip(members, write, symlinks=()):
    """Write a zip of ``members`` through ``write``, streaming, as Geti sends an export or a user
    uploads a deployment. Members are (name, content) pairs; content is bytes, or an object with
    ``size`` and ``chunks()`` (the fake Geti's generated payloads) so a big member is never held
    in memory. Names in ``symlinks`` are stored as symbolic links."""
    with zipfile.ZipFile(_WriteOnly(write), "w", zipfile.ZIP_STORED) as archive:
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = (0o120777 if name in symlinks else 0o100644) << 16
            chunks = [content] if isinstance(content, bytes) else content.chunks()
            info.file_size = len(content) if isinstance(content, bytes) else content.size
            with archive.open(info, "w") as member:
                for chunk in chunks:
                    member.write(chunk)


def zip_bytes(members, symlinks=()):
    """The zip ``write_zip`` writes, as bytes."""
    buffer = io.BytesIO()
    write_zip(members, buffer.write, symlinks)
    return buffer.getvalue()


def model_file(content=b"model-bytes", name="model.zip"):
    handle = io.BytesIO(content)
    handle.name = name
    return handle


@pytest.fixture
def upload(api_client, bucket):
    """Register an artifact through the API; returns the response."""

    def _upload(content=b"model-bytes", client=None, name="model.zip", **fields):
        data = {
            "registered_model": "person-detection",
            "version": "1",
            "precision": "FP32",
            "target_device": "CPU",
            "format": "openvino",
            **fields,
        }
        data["file"] = model_file(content, name)
        return (client or api_client).post("/api/v1/artifacts/", data, format="multipart")

    return _upload


@pytest.fixture
def artifact(upload):
    response = upload(b"x" * 1000)
    assert response.status_code == 201, response.content
    from models_app.models import Artifact

    return Artifact.objects.with_version().get(pk=response.json()["id"])


@pytest.fixture
def registered_model(db):
    from models_app.models import RegisteredModel

    return RegisteredModel.objects.create(name="person-detection", description="Finds people.")


@pytest.fixture
def model_version(registered_model):
    return registered_model.versions.create(version="1", category="Detection", architecture="YOLOX")
