from django.core.management.base import BaseCommand, CommandError

from models_app import storage
from models_app.errors import ArtifactStorageError
from models_app.storage.multipart import ensure_bucket


class Command(BaseCommand):
    help = "Create the S3 bucket named by S3_BUCKET if it does not exist (no-op for local files)."

    def handle(self, *args, **options):
        backend = storage.current_storage()
        if not storage.is_s3(backend):
            self.stdout.write(f"Artifacts are stored in local files under {backend.location}.")
            return
        try:
            outcome = ensure_bucket()
        except ArtifactStorageError as exc:
            raise CommandError(exc.message) from exc
        if outcome == "created":
            self.stdout.write(self.style.SUCCESS(f"Created bucket {backend.bucket_name}."))
        else:
            self.stdout.write(f"Bucket {backend.bucket_name} exists.")
