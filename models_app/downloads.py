"""HTTP download handling shared by /api/v1 and the Intel routes: Range parsing, streamed file
responses with their checksum headers, presigned redirects, and reading the stored bytes ahead of
a slow client.
"""

import base64
import queue
import threading
from http import HTTPStatus

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from .errors import RangeNotSatisfiable
from .storage import is_s3, object_uri, open_range, presigned_download_url


def parse_range(header, size):
    """Parse a single ``bytes=`` range into (start, end) inclusive, or None to send everything.

    Multiple ranges are answered with the whole file, which RFC 9110 allows.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                raise RangeNotSatisfiable()
            start, end = max(size - length, 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start >= size or start > end or start < 0:
        raise RangeNotSatisfiable(f"The range {header} is outside the file of {size} bytes.")
    return start, end


def iter_artifact(artifact, start=0, end=None, chunk_size=1024 * 1024):
    """Yield the artifact's bytes [start, end] in chunks, never holding the file in memory.

    On S3 this asks for exactly the range needed (a ranged GET), so a resumed download of a big
    model does not make the server read what the client already has.
    """
    end = artifact.size - 1 if end is None else end
    if artifact.size == 0:
        return iter(())
    body = open_range(artifact.file.name, start, end)
    chunks = body.iter_chunks(chunk_size)
    if is_s3():
        chunks = _read_ahead(chunks)
    return _guarded(chunks, body.close)


def _read_ahead(chunks, depth=4):
    """Iterate ``chunks`` in a background thread, up to ``depth`` chunks ahead of the consumer.

    Proxied downloads read from S3 and write to the client: done one after the other, each waits
    for the other's round trips. Reading ahead overlaps them, with memory bounded by ``depth``
    chunks. Closing the generator (a finished or dropped client) stops the reader.
    """
    ahead, stop, done = queue.Queue(maxsize=depth), threading.Event(), object()

    def produce():
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ahead.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item = done
        except BaseException as exc:  # handed to the consumer, which raises it in the request
            item = exc
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    reader = threading.Thread(target=produce, name="artifact-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _guarded(chunks, close):
    try:
        yield from chunks
    finally:
        close()


def artifact_file_response(request, artifact, content_type="application/octet-stream"):
    """A streamed download response with the headers download tools and caches rely on."""
    etag = f'"{artifact.sha256}"'
    headers = {
        "Content-Disposition": content_disposition_header(True, artifact.download_filename),
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Digest": "SHA-256=" + base64.b64encode(bytes.fromhex(artifact.sha256)).decode(),
        "Repr-Digest": "sha-256=:" + base64.b64encode(bytes.fromhex(artifact.sha256)).decode() + ":",
        "X-Checksum-SHA256": artifact.sha256,
    }
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponse(status=HTTPStatus.NOT_MODIFIED, headers=headers)
    byte_range = None
    if_range = request.headers.get("If-Range")
    if not if_range or if_range == etag:
        byte_range = parse_range(request.headers.get("Range"), artifact.size)
    start, end = byte_range or (0, artifact.size - 1)
    chunks = iter_artifact(artifact, start, end, settings.REGISTRY_DOWNLOAD_CHUNK_BYTES)
    response = StreamingHttpResponse(chunks, content_type=content_type, headers=headers)
    response["Content-Length"] = str(max(end - start + 1, 0))
    if byte_range:
        response.status_code = HTTPStatus.PARTIAL_CONTENT
        response["Content-Range"] = f"bytes {start}-{end}/{artifact.size}"
    return response


def artifact_uri(artifact):
    """Where the artifact's object lives, as ``s3://<bucket>/<key>``; None for local files."""
    return object_uri(artifact.file.name)


def download_response(request, artifact, mode=None):
    """The answer to a download: in ``redirect`` mode on S3, a 302 to a short-lived presigned URL
    (the bytes go from the bucket to the client without passing through the registry); otherwise
    the file streamed through the registry (local files are always streamed)."""
    if (mode or settings.REGISTRY_DOWNLOAD_MODE) == "redirect":
        url = presigned_download_url(artifact.file.name, filename=artifact.download_filename)
        if url:
            return HttpResponseRedirect(url, headers={"Cache-Control": "private, no-store"})
    return artifact_file_response(request, artifact)
