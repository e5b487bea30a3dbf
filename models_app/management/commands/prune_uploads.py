from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from models_app import blob_uploads, direct_uploads, storage
from models_app.errors import Conflict
from models_app.lib.locks import one_at_a_time
from models_app.models import IdempotencyKey, UploadSession
from models_app.storage import multipart


class Command(BaseCommand):
    help = (
        "Abort expired direct uploads and fail those whose completion stalled, multipart uploads left open "
        "in the bucket by interrupted API uploads, and OCI blob pushes left unfinished or unclaimed, "
        "so their parts stop taking space."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=24,
            help="Open multipart uploads without a pending session, and OCI blob uploads idle this long, are removed.",
        )
        parser.add_argument(
            "--forget-after-days",
            type=float,
            default=30,
            help="Delete finished, aborted or failed session rows older than this.",
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, **options):
        # Safe to schedule on every host: runs elsewhere wait for this one, then find nothing left.
        with one_at_a_time("prune_uploads"):
            self._prune(**options)

    def _prune(self, *, older_than_hours, forget_after_days, dry_run, **options):
        now = timezone.now()
        expired = UploadSession.objects.filter(state=UploadSession.State.PENDING, expires_at__lt=now)
        aborted = self._settle(
            expired,
            lambda s: f"{'would abort' if dry_run else 'aborting'} expired upload {s.id} ({s.key})",
            lambda s: direct_uploads.abort_direct_upload(s, reason="expired"),
            dry_run,
        )
        stalled = self._settle(
            direct_uploads.stalled_completions(),
            lambda s: f"{'would fail' if dry_run else 'failing'} upload {s.id} stalled while completing",
            direct_uploads.fail_stalled_completion,
            dry_run,
        )
        # Pushes over the OCI API (/v2/) left unfinished, or whose manifest never came.
        pushed = blob_uploads.prune(older_than_hours=older_than_hours, dry_run=dry_run, log=self.stdout.write)
        stray = 0
        if storage.is_s3():
            stray = self._abort_stray(now - timedelta(hours=older_than_hours), dry_run)
        old = UploadSession.objects.exclude(state__in=[UploadSession.State.PENDING, UploadSession.State.COMPLETING])
        old = old.filter(created_at__lt=now - timedelta(days=forget_after_days))
        forgotten = old.count() if dry_run else old.delete()[0]
        # A client retries a create within minutes; a day-old Idempotency-Key has done its job.
        keys = IdempotencyKey.objects.filter(created_at__lt=now - timedelta(hours=older_than_hours))
        keys = keys.count() if dry_run else keys.delete()[0]
        verb = "found" if dry_run else "pruned"
        self.stdout.write(
            f"{aborted} expired upload(s), {stalled} stalled completion(s), {pushed} abandoned OCI blob upload(s), "
            f"{stray} stray multipart upload(s), "
            f"{forgotten} old session row(s) and {keys} idempotency key(s) {verb}."
        )

    def _settle(self, sessions, describe, settle, dry_run):
        """Settle each session (say what, then do it); returns how many. A session another writer
        moved since it was listed (its client completing it, a stalled completion finishing after
        all) makes the move raise Conflict and is skipped: it is not this run's to settle."""
        count = 0
        for session in sessions:
            self.stdout.write(describe(session))
            if not dry_run:
                try:
                    settle(session)
                except Conflict:
                    self.stdout.write(f"skipping upload {session.id}: it is {session.state}")
                    continue
            count += 1
        return count

    def _abort_stray(self, cutoff, dry_run):
        """Multipart uploads under artifacts/ that no pending session owns (an API upload whose
        process died mid-stream) and that started before ``cutoff``."""
        owned = set(
            UploadSession.objects.filter(
                state__in=[UploadSession.State.PENDING, UploadSession.State.COMPLETING]
            ).values_list("upload_id", flat=True)
        )
        count = 0
        for name, upload_id, initiated in multipart.open_multipart_uploads("artifacts/"):
            if upload_id in owned or initiated > cutoff:
                continue
            count += 1
            self.stdout.write(f"{'would abort' if dry_run else 'aborting'} stray upload of {name}")
            if not dry_run:
                multipart.abort_multipart(name, upload_id)
        return count
