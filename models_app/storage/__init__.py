"""All object-storage I/O: the "artifacts" storage, looked up by alias at call time.

Services and commands call the functions here and in ``storage.multipart`` (S3 multipart uploads:
streamed API uploads and direct uploads); nothing else in the registry imports boto3 or botocore,
or reaches into django-storages' private methods. The storage is either an S3 bucket
(django-storages' S3Storage, with the OPTIONS built in settings) or local files.

Every boto3 client used here comes from the storage's own ``client_config`` (settings
``s3_storage_options``): connect timeout ``S3_CONNECT_TIMEOUT`` (5 s), read timeout
``S3_READ_TIMEOUT`` (10 s) and ``S3_MAX_ATTEMPTS`` (2) attempts with botocore's standard retry
mode, so no call to S3 waits forever; a storage that stops answering trips a breaker (below) so
later calls fail at once. botocore failures become ArtifactStorageError (503), whose messages never
name the endpoint.

Django evaluates a FileField's storage once, when models load. Model files must follow the
``STORAGES["artifacts"]`` setting as it is *now* (tests swap it for an S3 endpoint, operators
switch between local files and S3), so the field gets a lazy object that resolves the alias on
first use and forgets it whenever the STORAGES setting changes.
"""

import logging
import threading
import time

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty
from django.utils.http import content_disposition_header
from django.utils.text import get_valid_filename
from storages.utils import clean_name, safe_join

from ..errors import ArtifactStorageError

logger = logging.getLogger(__name__)

STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)


class _ArtifactStorage(LazyObject):
    def _setup(self):
        self._wrapped = storages["artifacts"]


artifact_storage = _ArtifactStorage()


def get_artifact_storage():
    """Callable for ``FileField(storage=...)``, so migrations reference it rather than a backend."""
    return artifact_storage


def current_storage():
    """The concrete storage backend behind the lazy object."""
    if artifact_storage._wrapped is empty:
        artifact_storage._setup()
    return artifact_storage._wrapped


def is_s3(storage=None):
    """True when artifacts live in an S3 bucket (so range reads and presigning use boto3)."""
    return hasattr(storage or current_storage(), "bucket_name")


@receiver(setting_changed)
def _reset_on_storages_change(*, setting, **kwargs):
    if setting == "STORAGES":
        artifact_storage._wrapped = empty
        _breaker["open_until"] = 0.0  # another storage: what the last one did says nothing


# --- Keys -------------------------------------------------------------------------------------


def artifact_key(artifact_id, filename):
    """Storage key built from the artifact's id: a client's file name can never pick the path.

    The cleaned file name is kept at the end only so the bucket stays readable for humans.
    """
    try:
        name = get_valid_filename(str(filename or "").replace("\\", "/").rsplit("/", 1)[-1])[:100].lstrip(".")
    except SuspiciousFileOperation:  # nothing usable is left of the name (empty, ".", "..")
        name = ""
    return f"artifacts/{artifact_id}/{name or 'model.bin'}"


def _object_key(storage, name):
    """The bucket key of a stored file's name: the name under the storage's ``location``, as
    S3Storage itself maps it."""
    return safe_join(storage.location, clean_name(name))


# --- Storage that does not answer ------------------------------------------------------------
#
# A bucket that accepts connections and never answers costs each call its timeouts (and retries).
# Once a call has timed out or could not connect, storage is taken to be down for
# ``REGISTRY_STORAGE_BREAKER_SECONDS``: every S3 call in that time fails at once (503 with
# Retry-After) instead of holding a request thread for the timeouts again. The first call after
# it tries the storage again.

OUTAGE_ERRORS = (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError)
_breaker = {"open_until": 0.0}
_breaker_lock = threading.Lock()


class StorageDown(BotoCoreError):
    fmt = "The artifact storage did not answer a moment ago; not asking it again yet."


def reason(exc):
    """Why a storage call failed, in words a client may see: never the exception's own text, which
    names the internal endpoint. The whole exception goes to the log."""
    logger.warning("Artifact storage call failed: %s", exc)
    if isinstance(exc, StorageDown):
        return "it did not answer a moment ago"
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return "it did not answer in time"
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError)):
        return "it could not be reached"
    if isinstance(exc, ClientError):
        return f"it answered {exc.response.get('Error', {}).get('Code', 'an error')}"
    return exc.__class__.__name__


def storage_is_down():
    return time.monotonic() < _breaker["open_until"]


def _refuse_while_down(**kwargs):
    if storage_is_down():
        raise StorageDown()


def _note_outage(exception=None, **kwargs):
    if isinstance(exception, OUTAGE_ERRORS):
        with _breaker_lock:
            _breaker["open_until"] = time.monotonic() + settings.REGISTRY_STORAGE_BREAKER_SECONDS
        logger.warning("Artifact storage did not answer (%s); failing fast for a while", exception)


def _guarded(client, trips=True):
    """Hook the breaker into a boto3 client, once per client: its calls fail at once while the
    breaker is open, and (``trips``) one that times out or cannot connect opens it."""
    if not getattr(client, "_registry_breaker", False):
        client.meta.events.register("before-send.s3", _refuse_while_down)
        if trips:
            client.meta.events.register("after-call-error.s3", _note_outage)
        client._registry_breaker = True
    return client


def _client(storage):
    """The storage's own boto3 client (its connection, built with ``client_config``), with the
    breaker hooked in: django-storages' own calls (save, open, delete) go through this client too."""
    return _guarded(storage.connection.meta.client)


_probe_clients = {}


def _probe_client(storage):
    """A client for /readyz: the storage's settings, but one attempt of at most a second to
    connect and a second to answer, so /readyz answers quickly whatever the storage does.

    Its timeouts do not open the breaker: a busy storage may take longer than a second to answer
    and still be well within the timeouts of real calls, and an open breaker would fail every
    transfer in flight. Real calls decide when the storage is down."""
    key = (storage.endpoint_url, storage.region_name, storage.access_key, storage.bucket_name)
    if key not in _probe_clients:
        config = storage.client_config.merge(Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}))
        _probe_clients[key] = _guarded(
            boto3.session.Session().client(
                "s3",
                endpoint_url=storage.endpoint_url,
                region_name=storage.region_name,
                aws_access_key_id=storage.access_key,
                aws_secret_access_key=storage.secret_key,
                config=config,
            ),
            trips=False,
        )
    return _probe_clients[key]


# --- Whole files ------------------------------------------------------------------------------


def check_storage(quick=False):
    """Raise ArtifactStorageError unless the storage answers: before deletes, asked with the
    storage's own timeouts and retries, as the delete's own calls will be; for /readyz
    (``quick``), with the one-second probe."""
    storage = current_storage()
    try:
        if is_s3(storage):
            client = _client(storage)  # hooks the breaker into this thread's client before django-storages uses it
            (_probe_client(storage) if quick else client).head_bucket(Bucket=storage.bucket_name)
        else:
            storage.listdir("")
    except FileNotFoundError:
        return  # an empty local store: the directory appears on the first upload
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"The artifact storage is unavailable: {reason(exc)}") from exc


def save_file(key, fileobj):
    """Store ``fileobj`` under ``key``; returns the name it was stored under."""
    try:
        if is_s3():
            _client(current_storage())
        return artifact_storage.save(key, fileobj)
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not store the file: {reason(exc)}") from exc


def delete_files(names):
    """Delete stored objects; failures are logged and left for ``prune_artifacts``."""
    for name in names:
        if not name:
            continue
        try:
            artifact_storage.delete(name)
        except STORAGE_ERRORS:
            logger.exception("Could not delete %s; `manage.py prune_artifacts` will remove it", name)


def delete_file(name):
    """Delete one stored object, raising ArtifactStorageError when the storage refuses."""
    try:
        if is_s3():
            _client(current_storage())
        artifact_storage.delete(name)
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not delete {name}: {reason(exc)}") from exc


def artifact_files(prefix="artifacts/"):
    """(name, last modified) of every stored file under ``prefix``."""
    storage = current_storage()
    if is_s3(storage):
        for page in (
            _client(storage).get_paginator("list_objects_v2").paginate(Bucket=storage.bucket_name, Prefix=prefix)
        ):
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["LastModified"]
        return
    try:
        dirs, _ = storage.listdir(prefix.rstrip("/"))
    except FileNotFoundError:
        return
    for directory in dirs:
        for filename in storage.listdir(f"{prefix}{directory}")[1]:
            name = f"{prefix}{directory}/{filename}"
            yield name, storage.get_modified_time(name)


class _LocalRange:
    """Bytes [start, start + length) of a local file, with the ``iter_chunks``/``close`` of an
    S3 response body."""

    def __init__(self, handle, length):
        self.handle, self.length = handle, length

    def iter_chunks(self, chunk_size):
        remaining = self.length
        while remaining > 0:
            chunk = self.handle.read(min(chunk_size, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk

    def close(self):
        self.handle.close()


def open_range(name, start, end):
    """A body with ``iter_chunks(chunk_size)`` and ``close()`` for bytes [start, end] of a file.

    On S3 this asks for exactly the range needed (a ranged GET), so a resumed download of a big
    model does not make the server read what the client already has.
    """
    storage = current_storage()
    try:
        if is_s3(storage):
            return _client(storage).get_object(
                Bucket=storage.bucket_name, Key=_object_key(storage, name), Range=f"bytes={start}-{end}"
            )["Body"]
        handle = storage.open(name, "rb")
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not read the file: {reason(exc)}") from exc
    handle.seek(start)
    return _LocalRange(handle, end - start + 1)


def object_uri(name):
    """Where a stored file lives, as ``s3://<bucket>/<key>``; None for local files."""
    storage = current_storage()
    if not is_s3(storage):
        return None
    return f"s3://{storage.bucket_name}/{_object_key(storage, name)}"


# --- Presigned URLs ---------------------------------------------------------------------------

_presigning_clients = {}


def _session(storage):
    """A boto3 session with the storage's credentials (its profile when one is set)."""
    if storage.session_profile:
        return boto3.Session(profile_name=storage.session_profile)
    return boto3.Session(
        aws_access_key_id=storage.access_key,
        aws_secret_access_key=storage.secret_key,
        aws_session_token=storage.security_token,
    )


def _presigning_client(storage):
    """The S3 client that signs URLs handed to clients (downloads in redirect mode, direct-upload
    parts).

    A signature covers the host, so when the registry reaches S3 by an address its clients cannot
    (``http://minio:9000`` inside Docker Compose), ``S3_PUBLIC_ENDPOINT_URL`` names the address
    clients use and URLs are signed for it. Without it, the storage's own client signs.
    """
    public = settings.S3_PUBLIC_ENDPOINT_URL
    if not public:
        return _client(storage)
    key = (public, storage.access_key, storage.region_name)
    if key not in _presigning_clients:
        _presigning_clients[key] = _session(storage).client(
            "s3",
            endpoint_url=public,
            region_name=storage.region_name,
            config=storage.client_config,
            verify=storage.verify,
        )
    return _presigning_clients[key]


def presigned_endpoint():
    """The address presigned URLs point at, which a browser sending direct-upload parts must be
    allowed to connect to (the upload page's Content-Security-Policy)."""
    return _presigning_client(current_storage()).meta.endpoint_url


def presigned_download_url(name, *, filename, expires=None):
    """A short-lived presigned GET URL for a stored file, or None on local files.

    The URL makes S3 answer with ``filename`` (Content-Disposition) and a generic content type,
    so a browser following the redirect saves the same file a proxied download would.
    """
    storage = current_storage()
    if not is_s3(storage):
        return None
    try:
        return _presigning_client(storage).generate_presigned_url(
            "get_object",
            ExpiresIn=expires or storage.querystring_expire,
            Params={
                "Bucket": storage.bucket_name,
                "Key": _object_key(storage, name),
                "ResponseContentDisposition": content_disposition_header(True, filename),
                "ResponseContentType": "application/octet-stream",
            },
        )
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not sign a download URL: {reason(exc)}") from exc
