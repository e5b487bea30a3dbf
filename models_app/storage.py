"""The "artifacts" storage, looked up by alias at call time.

Django evaluates a FileField's storage once, when models load. Model files must follow the
``STORAGES["artifacts"]`` setting as it is *now* (tests swap it for an S3 endpoint, operators
switch between local files and S3), so the field gets a lazy object that resolves the alias on
first use and forgets it whenever the STORAGES setting changes.
"""

from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty


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


def read_range(name, start, length):
    """Up to ``length`` bytes of the stored file ``name`` from ``start``: one ranged GET on S3, so
    a reader that needs a few parts of a big file (a zip's directory, one member) fetches only
    those. Fewer bytes come back at the end of the file."""
    if length <= 0:
        return b""
    storage = current_storage()
    if is_s3(storage):
        try:
            response = storage.connection.meta.client.get_object(
                Bucket=storage.bucket_name,
                Key=storage._normalize_name(name),
                Range=f"bytes={start}-{start + length - 1}",
            )
        except storage.connection.meta.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # at or past the end of the file
            raise
        with response["Body"] as body:
            return body.read()
    with storage.open(name, "rb") as handle:
        handle.seek(start)
        return handle.read(length)
