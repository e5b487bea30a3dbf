"""S3 multipart uploads: the writer that streams an API upload into the bucket part by part,
and the calls behind direct uploads, whose parts clients PUT to presigned URLs. Also the bucket's
own set-up (``ensure_bucket``).
"""

import hashlib
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ArtifactStorageError, DirectUploadUnavailable
from . import STORAGE_ERRORS, _client, _object_key, _presigning_client, current_storage, is_s3, reason

logger = logging.getLogger(__name__)

# The part checksum uploads declare, as boto3's transfer manager does. S3 checks each part against
# its CRC32 as it arrives and keeps a checksum of the part checksums. Without one declared, an S3
# server may compute a full-object checksum itself, and some (moto among them) do it by reading
# the whole object again when the upload completes.
PART_CHECKSUM = "CRC32"
# Where boto3 names a part's checksum, in requests and answers alike.
PART_CHECKSUM_FIELD = f"Checksum{PART_CHECKSUM}"


def completed_part(number, etag, checksum=None):
    """One part of a ``CompleteMultipartUpload`` list; an upload that declared ``PART_CHECKSUM``
    names each part's checksum there too."""
    part = {"PartNumber": number, "ETag": etag}
    if checksum:
        part[PART_CHECKSUM_FIELD] = checksum
    return part


@contextmanager
def aborting_on_failure(abort):
    """Run ``abort`` on any failure, so nothing of a half-written upload stays in the bucket;
    storage errors become ArtifactStorageError (503)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        abort()
        raise ArtifactStorageError(f"Could not store the file: {reason(exc)}") from exc
    except BaseException:
        abort()
        raise


class S3MultipartWriter:
    """Writes one object to S3 as a multipart upload from a stream of chunks.

    Up to ``in_flight`` parts upload in background threads while the next part fills, so memory
    stays at most ``(in_flight + 1) * part_size`` whatever the file size. Files that fit in one
    part take a single PUT. ``abort()`` removes everything written so far.

    Like boto3's own transfer manager, the upload declares ``PART_CHECKSUM`` part checksums,
    which the client library computes for each part it sends.
    """

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
                Bucket=self.bucket, Key=self.key, ChecksumAlgorithm=PART_CHECKSUM
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
            ChecksumAlgorithm=PART_CHECKSUM,
        )
        return completed_part(number, response["ETag"], response.get(PART_CHECKSUM_FIELD))

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


def start_multipart(name, *, checksum=False):
    """Open a multipart upload for the stored file ``name``; returns its upload id. With
    ``checksum``, the upload declares ``PART_CHECKSUM``: every part must then carry its checksum,
    and S3 refuses a part whose bytes do not match it."""
    storage, client = _bucket()
    extra = {"ChecksumAlgorithm": PART_CHECKSUM} if checksum else {}
    try:
        return client.create_multipart_upload(Bucket=storage.bucket_name, Key=_object_key(storage, name), **extra)[
            "UploadId"
        ]
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not start the upload: {reason(exc)}") from exc


def presigned_part_urls(name, upload_id, parts, expires_in):
    """Presigned PUT URLs for parts of a multipart upload: ``parts`` is ``[(number, length,
    checksum), ...]``, the checksum (``PART_CHECKSUM``, base64) None for an upload that declared
    none.

    Each URL signs its Content-Length: S3 answers 403 SignatureDoesNotMatch to a PUT of any other
    size, so a part cannot carry more (or fewer) bytes than the upload announced. A checksum is
    signed too, as S3 requires of every ``x-amz-*`` header a presigned request carries: the PUT
    must send it as ``x-amz-checksum-crc32``, and S3 refuses bytes that do not match it.
    """
    storage, _ = _bucket()
    client = _presigning_client(storage)
    key = _object_key(storage, name)
    urls = []
    for number, length, checksum in parts:
        params = {
            "Bucket": storage.bucket_name,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": number,
            "ContentLength": length,
        }
        if checksum:
            params[PART_CHECKSUM_FIELD] = checksum
        url = client.generate_presigned_url("upload_part", ExpiresIn=expires_in, Params=params)
        urls.append({"part_number": number, "size": length, "url": url})
    return urls


def complete_multipart(name, upload_id, parts):
    """Complete a multipart upload from ``[{"part_number", "etag", "checksum_crc32"}, ...]`` (the
    checksum only for an upload that declared one).

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
                    completed_part(p["part_number"], p["etag"], p.get("checksum_crc32"))
                    for p in sorted(parts, key=lambda p: p["part_number"])
                ]
            },
        )
    except ClientError as exc:
        raise PartsRefused(exc.response.get("Error", {}).get("Message", exc)) from exc
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not complete the upload: {reason(exc)}") from exc


class UploadGone(Exception):
    """S3 no longer knows a multipart upload (aborted, completed or expired on its side)."""


def received_parts(name, upload_id):
    """The parts S3 holds for an open multipart upload, by part number:
    ``[{"part_number", "size", "etag", "checksum_crc32"}, ...]``, the checksum None unless the
    upload declared one and S3 lists it.

    S3 lists at most 1000 parts an answer; the paginator follows its markers to the end. Raises
    UploadGone when S3 does not know the upload, ArtifactStorageError when it cannot be reached.
    """
    storage, client = _bucket()
    pages = client.get_paginator("list_parts").paginate(
        Bucket=storage.bucket_name, Key=_object_key(storage, name), UploadId=upload_id
    )
    try:
        return [
            {
                "part_number": part["PartNumber"],
                "size": part["Size"],
                "etag": part["ETag"],
                "checksum_crc32": part.get(PART_CHECKSUM_FIELD),
            }
            for page in pages
            for part in page.get("Parts", [])
        ]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
            raise UploadGone() from exc
        raise ArtifactStorageError(f"Could not list the parts: {reason(exc)}") from exc
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not list the parts: {reason(exc)}") from exc


def abort_multipart(name, upload_id):
    """Abort a multipart upload (S3 drops its parts); one that is already gone is fine."""
    storage, client = _bucket()
    try:
        client.abort_multipart_upload(Bucket=storage.bucket_name, Key=_object_key(storage, name), UploadId=upload_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
            return
        raise ArtifactStorageError(f"Could not abort the upload: {reason(exc)}") from exc
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not abort the upload: {reason(exc)}") from exc


def open_multipart_uploads(prefix="artifacts/"):
    """(name, upload id, initiated) of every multipart upload open under ``prefix``."""
    storage, client = _bucket()
    location = _object_key(storage, "")
    for page in client.get_paginator("list_multipart_uploads").paginate(
        Bucket=storage.bucket_name, Prefix=_object_key(storage, prefix)
    ):
        for upload in page.get("Uploads", []):
            yield upload["Key"].removeprefix(location), upload["UploadId"], upload["Initiated"]


def stored_object(name):
    """(size in bytes, ETag) of a stored object, as S3 reports them."""
    storage, client = _bucket()
    try:
        head = client.head_object(Bucket=storage.bucket_name, Key=_object_key(storage, name))
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not verify the upload: {reason(exc)}") from exc
    return head["ContentLength"], head["ETag"]


# The read-back hashes in this thread while another reads ahead, so reading and hashing overlap;
# at most ``READ_AHEAD + 2`` chunks are held at once.
READ_BACK_CHUNK = 8 * 1024 * 1024
READ_AHEAD = 4


def object_sha256(name, etag):
    """Read the stored object back and hash it: S3's own multipart checksums are checksums of
    part checksums, not the sha256 of the file a client knows.

    One GET, read ahead by a second thread. Not ranges in parallel: some S3 servers (moto among
    them) read the whole object out for every range request. The GET asks for the object ``etag``
    names (If-Match), so an object replaced since it was measured fails the read.
    """
    storage, client = _bucket()
    digest = hashlib.sha256()
    try:
        body = client.get_object(Bucket=storage.bucket_name, Key=_object_key(storage, name), IfMatch=etag)["Body"]
        with closing(body), ThreadPoolExecutor(1, thread_name_prefix="read-back") as reader:
            chunks = body.iter_chunks(READ_BACK_CHUNK)
            ahead = deque(reader.submit(next, chunks, None) for _ in range(READ_AHEAD))
            while (chunk := ahead.popleft().result()) is not None:
                ahead.append(reader.submit(next, chunks, None))
                digest.update(chunk)
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not verify the upload: {reason(exc)}") from exc
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
            raise ArtifactStorageError(f"Cannot reach bucket {storage.bucket_name}: {reason(exc)}") from exc
    except Exception as exc:  # connection errors: say so plainly
        raise ArtifactStorageError(f"Cannot reach the S3 endpoint: {reason(exc)}") from exc
    kwargs = {"Bucket": storage.bucket_name}
    region = client.meta.region_name
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except Exception as exc:
        raise ArtifactStorageError(f"Cannot reach the S3 endpoint: {reason(exc)}") from exc
    return "created"
