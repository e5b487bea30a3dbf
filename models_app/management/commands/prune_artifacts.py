from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from models_app import storage
from models_app.lib.locks import one_at_a_time
from models_app.models import Artifact


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

    def handle(self, *args, **options):
        # Safe to schedule on every host: runs elsewhere wait for this one, then find nothing left.
        with one_at_a_time("prune_artifacts"):
            self._prune(**options)

    def _prune(self, *, older_than_hours, dry_run, **options):
        cutoff = timezone.now() - timedelta(hours=older_than_hours)
        known = set(Artifact.objects.values_list("file", flat=True))
        removed = 0
        for name, modified in storage.artifact_files("artifacts/"):
            if name in known or modified > cutoff:
                continue
            removed += 1
            self.stdout.write(f"{'would delete' if dry_run else 'deleting'} {name}")
            if not dry_run:
                storage.delete_file(name)
        self.stdout.write(f"{removed} orphaned file(s) {'found' if dry_run else 'deleted'}.")
