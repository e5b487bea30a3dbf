"""Upload handling: hash and measure every uploaded file while it streams in.

Two handlers run in order (``FILE_UPLOAD_HANDLERS``):

- ``S3StreamingUploadHandler``: when artifacts live on S3, each file part goes straight into an
  S3 multipart upload while it is hashed, so the bytes cross the server once, in bounded memory,
  and storage writes overlap with reading the request. It aborts the multipart upload on any
  failure, so an interrupted or refused upload leaves nothing in the bucket.
- ``HashingUploadHandler``: on local files, the file goes to a temporary file, hashed on the way.

Both refuse a file bigger than ``REGISTRY_MAX_UPLOAD_BYTES`` with a 413 while it streams.
"""

import hashlib
import math
import uuid

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, TemporaryFileUploadHandler
from django.core.files.utils import validate_file_name
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, FileUploadParser, MultiPartParser, get_encoding

from .errors import FileTooLarge
from .storage import artifact_key, delete_files, is_s3
from .storage.multipart import S3MultipartWriter, aborting_on_failure

MiB = 1024 * 1024
# S3 allows at most 10,000 parts of at least 5 MiB (but the last).
S3_MAX_PARTS = 10_000
S3_MIN_PART = 5 * MiB
# Reading the request in 1 MiB pieces rather than Django's 64 KiB keeps per-chunk Python work
# small next to the bytes moved; memory stays bounded by the part buffers below.
READ_CHUNK = MiB


def part_size_for(total_size, minimum=None):
    """The S3 part size for a file of ``total_size`` bytes: at least ``REGISTRY_UPLOAD_PART_BYTES``,
    larger when needed to stay within S3's 10,000 parts, rounded up to whole MiB."""
    minimum = max(minimum or settings.REGISTRY_UPLOAD_PART_BYTES, S3_MIN_PART)
    needed = math.ceil((total_size or 0) / (S3_MAX_PARTS - 1))
    return max(minimum, math.ceil(needed / MiB) * MiB)


def check_content_length(content_length):
    """Refuse before reading a byte when the declared body is already over the limit.

    The multipart envelope adds a few hundred bytes; a margin keeps honest uploads right at the
    limit accepted while the per-chunk count stays exact.
    """
    limit = settings.REGISTRY_MAX_UPLOAD_BYTES
    if content_length and content_length > limit + 64 * 1024:
        raise FileTooLarge(limit)


class StoredUpload(UploadedFile):
    """A file that is already in the artifact storage under ``stored_name``, with its size and
    sha256 measured on the way in.

    ``services.register_artifact`` takes it over (``claimed``); until then the object belongs to
    the request, and closing the file (Django closes uploaded files when the request ends, and the
    multipart parser on a parse error) deletes it. So a request that fails validation, or a form
    that never registers the file, leaves nothing behind.
    """

    def __init__(self, *, name, stored_name, artifact_id, size, sha256, content_type=""):
        super().__init__(file=None, name=name, content_type=content_type, size=size)
        self.stored_name, self.artifact_id, self.sha256 = stored_name, artifact_id, sha256
        self.claimed = False

    def open(self, mode=None):
        raise ValueError("This file is already in the artifact storage; read it from there.")

    def close(self):
        if not self.claimed:
            self.claimed = True  # once: close() may be called by both the parser and the request
            delete_files([self.stored_name])


class S3StreamingUploadHandler(FileUploadHandler):
    """Streams each uploaded file into an S3 multipart upload, hashing and counting on the way.

    Active only when the artifact storage is S3; otherwise it passes chunks on to the next handler.
    Before the first byte, whatever the storage, it runs the view's ``upload_precheck`` on the
    form fields that came before the file (see ``StreamingMultiPartParser``), so a duplicate
    variant is refused without streaming gigabytes first; fields sent after the file are checked
    when the artifact is registered, and the streamed object is then deleted.
    """

    chunk_size = READ_CHUNK

    def __init__(self, request=None):
        super().__init__(request)
        self.writer = None
        self.parser = None
        self.content_length = None

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        check_content_length(content_length)
        self.content_length = content_length

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        self.writer = None
        precheck = getattr(self.parser, "precheck", None)
        if precheck:  # on local files too: a refused file is not even written to a temporary file
            precheck(getattr(self.parser, "_post", None) or {}, content_type=self.content_type or "")
        if not is_s3():
            return
        self.artifact_id = uuid.uuid4()
        self.stored_name = artifact_key(self.artifact_id, file_name)
        self.sha256, self.size = hashlib.sha256(), 0
        self.writer = S3MultipartWriter.for_name(self.stored_name, part_size_for(self.content_length))
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data, start):
        if self.writer is None:
            return raw_data
        self.size += len(raw_data)
        if self.size > settings.REGISTRY_MAX_UPLOAD_BYTES:
            self.abort()
            raise FileTooLarge(settings.REGISTRY_MAX_UPLOAD_BYTES)
        self.sha256.update(raw_data)
        with aborting_on_failure(self.abort):
            self.writer.write(raw_data)
        return None

    def file_complete(self, file_size):
        if self.writer is None:
            return None
        writer, self.writer = self.writer, None
        with aborting_on_failure(writer.abort):
            writer.close()
        return StoredUpload(
            name=self.file_name,
            stored_name=self.stored_name,
            artifact_id=self.artifact_id,
            size=self.size,
            sha256=self.sha256.hexdigest(),
            content_type=self.content_type or "",
        )

    def abort(self):
        """Drop the file in progress: nothing of it stays in the bucket."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.abort()

    def upload_interrupted(self):
        self.abort()


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes each file part to a temporary file (never to memory), computing its sha256 and size
    on the way, and stops as soon as the configured maximum is crossed.

    The request's Content-Length is checked first, so an oversized upload is refused before a
    single byte is written.
    """

    chunk_size = READ_CHUNK

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        check_content_length(content_length)
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def receive_data_chunk(self, raw_data, start):
        self.size += len(raw_data)
        if self.size > settings.REGISTRY_MAX_UPLOAD_BYTES:
            self.file.close()  # a temporary file: closing removes it
            raise FileTooLarge(settings.REGISTRY_MAX_UPLOAD_BYTES)
        self.sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self.sha256.hexdigest()
        return uploaded


class StreamingMultiPartParser(MultiPartParser):
    """DRF's multipart parser, plus two things the streaming handler needs.

    - The handlers see the form fields parsed so far and the view's
      ``upload_precheck(fields, content_type=...)`` (the file part's declared type),
      so a request whose metadata comes before the file can be refused before the file streams.
    - Any error while parsing (a client that disconnects, a refused file) aborts the file in
      progress, so no multipart upload is left open in the bucket.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handlers = request.upload_handlers
        view = parser_context.get("view")
        try:
            parser = DjangoMultiPartParser(meta, stream, handlers, get_encoding(parser_context))
            parser.precheck = getattr(view, "upload_precheck", None)
            for handler in handlers:
                handler.parser = parser
            data, files = parser.parse()
            return DataAndFiles(data, files)
        except MultiPartParserError as exc:
            abort_handlers(handlers)
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        except BaseException:
            abort_handlers(handlers)
            raise


def abort_handlers(handlers):
    """Drop the file in progress of every handler that streams one (a failed parse)."""
    for handler in handlers:
        if hasattr(handler, "abort"):
            handler.abort()


class StreamingFileParser(FileUploadParser):
    """The request body is the file, whatever its Content-Type (``curl -T model.xml``); the
    file's name is in the URL and the registration's metadata in the query string, under the
    multipart form's field names.

    The body goes through the same upload handlers as a multipart file, without the multipart
    parser's copying and boundary scanning, so big files cost the server less CPU. All metadata
    is known before the first byte, so a duplicate variant is refused before anything streams.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        # Checked before the first byte: Django refuses a name such as ".." only once the file has
        # been stored, which left an object no row points at.
        filename = self.get_filename(stream, media_type, parser_context)
        if filename:  # DRF refuses a missing name itself
            try:
                validate_file_name(filename)
            except SuspiciousFileOperation:
                raise ParseError("The name in the URL is not a usable file name.") from None
        # What the handlers look at before the first byte: see S3StreamingUploadHandler.new_file.
        self._post = request.query_params
        self.precheck = getattr(parser_context.get("view"), "upload_precheck", None)
        handlers = request.upload_handlers
        for handler in handlers:
            handler.parser = self
        try:
            parsed = super().parse(stream, media_type, parser_context).files
        except BaseException:
            abort_handlers(handlers)
            raise
        files = MultiValueDict({name: [uploaded] for name, uploaded in parsed.items()})
        # DRF hands files to the Django request only for form content types; the middleware
        # below finds a file the view did not register there, and deletes it.
        request._request._files = files
        return DataAndFiles(request.query_params.copy(), files)


class ReleaseStoredUploadsMiddleware:
    """Delete streamed files the view did not register, before the response leaves.

    Django closes uploaded files (and so deletes unclaimed ``StoredUpload`` objects) only once the
    response has been sent; a client that reads a 4xx and looks at the bucket at once must already
    find it clean.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        files = getattr(request, "_files", None)
        if files:
            for uploaded in (f for _, items in files.lists() for f in items):
                if isinstance(uploaded, StoredUpload) and not uploaded.claimed:
                    uploaded.close()
        return response
