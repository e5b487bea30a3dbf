"""Mark Geti imports whose worker died as failed.

A worker killed in the middle of an import (OOM, a redeploy) cannot say so; its job would stay
"running" and block a new import of the same model. Run at worker start (scripts/run.sh and
docker-compose do) and whenever in doubt.
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
            help="Every running job is dead: use when starting the only worker, before it runs.",
        )

    def handle(self, *args, older_than=None, all=False, **options):
        seconds = 0 if all else (settings.GETI_IMPORT_STALE_SECONDS if older_than is None else older_than)
        count = fail_stale_jobs(seconds)
        self.stdout.write(f"Marked {count} stale Geti import(s) as failed.")
