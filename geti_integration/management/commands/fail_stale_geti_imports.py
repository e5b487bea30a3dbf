"""Mark Geti imports whose worker died as failed.

A worker killed in the middle of an import (OOM, a redeploy) cannot say so; its job would stay
"running" and block a new import of the same model. A running worker keeps each of its jobs'
heartbeat going, so a job silent for GETI_IMPORT_STALE_SECONDS has no worker left, and this is
safe to run from any number of places at once: every worker runs it as it starts (scripts/run.sh
and docker-compose do), without failing an import another worker is running. Each running job
also has a watch queued that fails it once it goes silent, so this is a catch-up, not a chore.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from geti_integration.importer import fail_stale_jobs


class Command(BaseCommand):
    help = "Mark running Geti imports whose worker stopped reporting as failed."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="SECONDS",
            help="Silence after which a running job counts as dead (default: GETI_IMPORT_STALE_SECONDS).",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="Every running job is dead: only when no worker runs anywhere (after stopping them all).",
        )

    def handle(self, *args, older_than=None, all=False, **options):
        seconds = 0 if all else (settings.GETI_IMPORT_STALE_SECONDS if older_than is None else older_than)
        count = fail_stale_jobs(seconds)
        self.stdout.write(f"Marked {count} stale Geti import(s) as failed.")
