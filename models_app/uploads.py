"""Upload handling: hash and measure every uploaded file while it streams in."""

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from .errors import FileTooLarge


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes each file part to a temporary file (never to memory), computing its sha256 and size
    on the way, and stops as soon as the configured maximum is crossed.

    The request's Content-Length is checked first, so an oversized upload is refused before a
    single byte is written.
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        limit = settings.REGISTRY_MAX_UPLOAD_BYTES
        # The multipart envelope adds a few hundred bytes; a margin keeps honest uploads right at
        # the limit accepted while the per-chunk count below stays exact.
        if content_length and content_length > limit + 64 * 1024:
            raise FileTooLarge(limit)
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
