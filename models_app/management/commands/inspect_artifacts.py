from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from models_app.inspection.service import inspect_artifact
from models_app.models import Artifact


class Command(BaseCommand):
    help = (
        "Inspect artifacts' files here and now (what the worker does after each upload): those "
        "never inspected (--pending, the default), those whose inspection failed (--failed), or all."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--pending", action="store_true", help="Artifacts not inspected yet (the default).")
        which.add_argument("--failed", action="store_true", help="Artifacts whose inspection failed.")
        which.add_argument("--all", dest="everything", action="store_true", help="Every artifact, again.")
        parser.add_argument("ids", nargs="*", help="Only these artifact ids.")

    def handle(self, *args, pending, failed, everything, ids, **options):
        artifacts = Artifact.objects.order_by("created_at", "pk")
        if ids:
            try:
                artifacts = artifacts.filter(pk__in=ids)
                found = artifacts.exists()
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            if not found:
                raise CommandError("No artifact has these ids.")
        if failed:
            artifacts = artifacts.inspection_status("failed")
        elif not everything and not ids:
            artifacts = artifacts.inspection_status("pending")
        counts = {}
        for artifact in artifacts.iterator(chunk_size=100):
            inspection = inspect_artifact(artifact)
            if inspection is None:
                continue
            counts[inspection.status] = counts.get(inspection.status, 0) + 1
            line = f"{artifact.pk} {artifact.original_filename or artifact.file.name}: {inspection.status}"
            self.stdout.write(line + (f" ({inspection.reason})" if inspection.reason else ""))
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to inspect"
        self.stdout.write(self.style.SUCCESS(f"Inspected: {summary}."))
