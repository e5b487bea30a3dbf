"""All object-storage I/O: the "artifacts" storage, looked up by alias at call time.

Services and commands call the functions here; nothing else in the registry imports boto3 or
botocore, or reaches into django-storages' private methods. The storage is either an S3 bucket
(django-storages' S3Storage, with the OPTIONS built in settings) or local files.

Every boto3 client used here comes from the storage's own ``client_config`` (settings
``s3_storage_options``): connect timeout ``S3_CONNECT_TIMEOUT`` (5 s), read timeout
``S3_READ_TIMEOUT`` (60 s) and ``S3_MAX_ATTEMPTS`` (3) attempts with botocore's standard retry
mode, so no call to S3 waits forever. botocore failures become ArtifactStorageError (503).

Django evaluates a FileField's storage once, when models load. Model files must follow the
``STORAGES["artifacts"]`` setting as it is *now* (tests swap it for an S3 endpoint, operators
switch between local files and S3), so the field gets a lazy object that resolves the alias on
first use and forgets it whenever the STORAGES setting changes.
"""

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty
from django.utils.http import content_disposition_header
from django.utils.text import get_valid_filename
from storages.utils import clean_name, safe_join

from .errors import ArtifactStorageError, DirectUploadUnavailable

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


def _client(storage):
    """The storage's own boto3 client (its connection, built with ``client_config``)."""
    return storage.connection.meta.client


# --- Whole files ------------------------------------------------------------------------------


def check_storage():
    """Raise ArtifactStorageError unless the storage answers (used by /readyz and before deletes)."""
    storage = current_storage()
    try:
        if is_s3(storage):
            _client(storage).head_bucket(Bucket=storage.bucket_name)
        else:
            storage.listdir("")
    except FileNotFoundError:
        return  # an empty local store: the directory appears on the first upload
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"The artifact storage is unavailable: {exc}") from exc


def save_file(key, fileobj):
    """Store ``fileobj`` under ``key``; returns the name it was stored under."""
    try:
        return artifact_storage.save(key, fileobj)
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not store the file: {exc}") from exc


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
        artifact_storage.delete(name)
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not delete {name}: {exc}") from exc


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
        raise ArtifactStorageError(f"Could not read the file: {exc}") from exc
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
        raise ArtifactStorageError(f"Could not sign a download URL: {exc}") from exc


# --- Multipart uploads ------------------------------------------------------------------------


@contextmanager
def aborting_on_failure(abort):
    """Run ``abort`` on any failure, so nothing of a half-written upload stays in the bucket;
    storage errors become ArtifactStorageError (503)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        abort()
        raise ArtifactStorageError(f"Could not store the file: {exc}") from exc
    except BaseException:
        abort()
        raise


class S3MultipartWriter:
    """Writes one object to S3 as a multipart upload from a stream of chunks.

    Up to ``in_flight`` parts upload in background threads while the next part fills, so memory
    stays at most ``(in_flight + 1) * part_size`` whatever the file size. Files that fit in one
    part take a single PUT. ``abort()`` removes everything written so far.

    Like boto3's own transfer manager, the upload declares CRC32 part checksums: S3 checks each
    part against its CRC32 as it arrives and keeps a checksum of the part checksums. Without one
    declared, an S3 server may compute a full-object checksum itself, and some (moto among them)
    do it by reading the whole object again when the upload completes.
    """

    checksum = "CRC32"

    def __init__(self, client, bucket, key, part_size, in_flight=2):
        self.client, self.bucket, self.key = client, bucket, key
        self.part_size, self.in_flight = part_size, in_flight
        self.chunks, self.buffered = [], 0
        self.upload_id = None
        self.pending, self.parts = [], []
        self.executor = None

    @classmethod
    def for_name(cls, name, part_size):
        """A writer for the stored file ``name`` in the artifacts bucket."""
        storage = current_storage()
        return cls(_client(storage), storage.bucket_name, _object_key(storage, name), part_size)

    def write(self, data):
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= self.part_size:
            # A free slot first, then the join: the chunks and their joined copy never sit beside
            # a full set of parts in flight, so memory peaks at in_flight + 1 parts, not + 2.
            # Parts may run a chunk over part_size (S3 only needs >= 5 MiB); joining the chunks
            # is the one copy a part needs.
            self._wait_for_slot()
            part, self.chunks, self.buffered = b"".join(self.chunks), [], 0
            self._send(part)

    def _wait_for_slot(self):
        while len(self.pending) >= self.in_flight:
            self.parts.append(self.pending.pop(0).result())

    def _send(self, data):
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ChecksumAlgorithm=self.checksum
            )["UploadId"]
            self.executor = ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="s3-part")
        self._wait_for_slot()
        number = len(self.parts) + len(self.pending) + 1
        self.pending.append(self.executor.submit(self._upload_part, number, data))

    def _upload_part(self, number, data):
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=self.checksum,
        )
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if f"Checksum{self.checksum}" in response:  # completing the upload names each part's checksum
            part[f"Checksum{self.checksum}"] = response[f"Checksum{self.checksum}"]
        return part

    def close(self):
        """Send what is buffered and finish the object."""
        rest, self.chunks, self.buffered = b"".join(self.chunks), [], 0
        if self.upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=rest)
            return
        if rest:
            self._send(rest)
        self.parts.extend(future.result() for future in self.pending)
        self.pending = []
        self.executor.shutdown()
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def abort(self):
        """Forget the buffer and abort the multipart upload (its parts are deleted by S3)."""
        self.chunks, self.buffered = [], 0
        for future in self.pending:
            future.cancel()
        if self.executor:
            self.executor.shutdown(wait=True)
        self.pending = []
        if self.upload_id:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            except Exception:
                logger.exception(
                    "Could not abort upload %s of %s; `manage.py prune_uploads` will", self.upload_id, self.key
                )
            self.upload_id = None


# --- Direct uploads: multipart uploads the client fills through presigned part URLs -----------


class PartsRefused(Exception):
    """S3 refused a direct upload's part list (wrong or missing parts): the client's mistake."""


def _bucket():
    """The S3 storage and its client; DirectUploadUnavailable (501) on local files."""
    storage = current_storage()
    if not is_s3(storage):
        raise DirectUploadUnavailable()
    return storage, _client(storage)


def require_s3():
    """Raise DirectUploadUnavailable (501) unless artifacts live on S3."""
    _bucket()


def start_multipart(name):
    """Open a multipart upload for the stored file ``name``; returns its upload id."""
    storage, client = _bucket()
    try:
        return client.create_multipart_upload(Bucket=storage.bucket_name, Key=_object_key(storage, name))["UploadId"]
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not start the upload: {exc}") from exc


def presigned_part_urls(name, upload_id, part_count, expires_in):
    """Presigned PUT URLs for parts 1..``part_count`` of a multipart upload."""
    storage, _ = _bucket()
    client = _presigning_client(storage)
    key = _object_key(storage, name)
    return [
        {
            "part_number": number,
            "url": client.generate_presigned_url(
                "upload_part",
                ExpiresIn=expires_in,
                Params={"Bucket": storage.bucket_name, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ),
        }
        for number in range(1, part_count + 1)
    ]


def complete_multipart(name, upload_id, parts):
    """Complete a multipart upload from ``[{"part_number", "etag"}, ...]``.

    Raises PartsRefused with S3's message when S3 refuses the parts (the upload stays open), and
    ArtifactStorageError when S3 cannot be reached.
    """
    storage, client = _bucket()
    try:
        client.complete_multipart_upload(
            Bucket=storage.bucket_name,
            Key=_object_key(storage, name),
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [
                    {"PartNumber": p["part_number"], "ETag": p["etag"]}
                    for p in sorted(parts, key=lambda p: p["part_number"])
                ]
            },
        )
    except ClientError as exc:
        raise PartsRefused(exc.response.get("Error", {}).get("Message", exc)) from exc
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not complete the upload: {exc}") from exc


def abort_multipart(name, upload_id):
    """Abort a multipart upload (S3 drops its parts); one that is already gone is fine."""
    storage, client = _bucket()
    try:
        client.abort_multipart_upload(Bucket=storage.bucket_name, Key=_object_key(storage, name), UploadId=upload_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
            return
        raise ArtifactStorageError(f"Could not abort the upload: {exc}") from exc
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not abort the upload: {exc}") from exc


def open_multipart_uploads(prefix="artifacts/"):
    """(name, upload id, initiated) of every multipart upload open under ``prefix``."""
    storage, client = _bucket()
    location = _object_key(storage, "")
    for page in client.get_paginator("list_multipart_uploads").paginate(
        Bucket=storage.bucket_name, Prefix=_object_key(storage, prefix)
    ):
        for upload in page.get("Uploads", []):
            yield upload["Key"].removeprefix(location), upload["UploadId"], upload["Initiated"]


def object_size(name):
    """The size in bytes of a stored object, as S3 reports it."""
    storage, client = _bucket()
    try:
        return client.head_object(Bucket=storage.bucket_name, Key=_object_key(storage, name))["ContentLength"]
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not verify the upload: {exc}") from exc


def object_sha256(name, chunk_size=8 * 1024 * 1024):
    """Read the stored object once and hash it: S3's own multipart checksums are checksums of
    part checksums, not the sha256 of the file a client knows."""
    storage, client = _bucket()
    digest = hashlib.sha256()
    try:
        body = client.get_object(Bucket=storage.bucket_name, Key=_object_key(storage, name))["Body"]
        try:
            for chunk in body.iter_chunks(chunk_size):
                digest.update(chunk)
        finally:
            body.close()
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not verify the upload: {exc}") from exc
    return digest.hexdigest()


# --- The bucket -------------------------------------------------------------------------------


def ensure_bucket():
    """Create the S3 bucket when it does not exist. Returns "exists" or "created".

    Raises ArtifactStorageError naming what failed when the bucket or the endpoint cannot be
    reached.
    """
    storage, client = _bucket()
    try:
        client.head_bucket(Bucket=storage.bucket_name)
        return "exists"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
            raise ArtifactStorageError(f"Cannot reach bucket {storage.bucket_name}: {exc}") from exc
    except Exception as exc:  # connection errors: say so plainly
        raise ArtifactStorageError(f"Cannot reach the S3 endpoint: {exc}") from exc
    kwargs = {"Bucket": storage.bucket_name}
    region = client.meta.region_name
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except Exception as exc:
        raise ArtifactStorageError(f"Cannot reach the S3 endpoint: {exc}") from exc
    return "created"
