from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from models_app.models import Artifact
from models_app.storage import current_storage, is_s3


class Command(BaseCommand):
    help = "Delete stored files that no artifact row points to (left by crashes or failed deletes)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=24,
            help="Only objects older than this, so uploads in flight are never touched.",
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, older_than_hours, dry_run, **options):
        storage = current_storage()
        cutoff = timezone.now() - timedelta(hours=older_than_hours)
        known = set(Artifact.objects.values_list("file", flat=True))
        removed = 0
        for name, modified in self._objects(storage):
            if name in known or modified > cutoff:
                continue
            removed += 1
            self.stdout.write(f"{'would delete' if dry_run else 'deleting'} {name}")
            if not dry_run:
                storage.delete(name)
        self.stdout.write(f"{removed} orphaned file(s) {'found' if dry_run else 'deleted'}.")

    def _objects(self, storage):
        """(name, last modified) of every stored file under artifacts/."""
        if is_s3(storage):
            for obj in storage.bucket.objects.filter(Prefix="artifacts/"):
                yield obj.key, obj.last_modified
            return
        try:
            dirs, _ = storage.listdir("artifacts")
        except FileNotFoundError:
            return
        for directory in dirs:
            for filename in storage.listdir(f"artifacts/{directory}")[1]:
                name = f"artifacts/{directory}/{filename}"
                yield name, storage.get_modified_time(name)
