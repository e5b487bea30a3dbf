"""Send webhook deliveries: once, or in a loop beside the background-job worker."""

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from webhooks.delivery import prune, run_once

logger = logging.getLogger("webhooks.delivery")

PRUNE_EVERY_SECONDS = 3600


class Command(BaseCommand):
    help = "Dispatch new registry events to webhook subscriptions and send due deliveries (with --loop, forever)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep running; stop on SIGTERM or Ctrl+C.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between passes that found nothing to send (default: REGISTRY_WEBHOOK_POLL_SECONDS).",
        )

    def handle(self, *args, loop=False, interval=None, **options):
        interval = settings.REGISTRY_WEBHOOK_POLL_SECONDS if interval is None else interval
        if not loop:
            sent = run_once()
            prune()
            self.stdout.write(f"Attempted {sent} webhook deliveries.")
            return
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        last_prune = 0.0
        try:
            while not stopping:
                close_old_connections()
                try:
                    if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                        prune()
                        last_prune = time.monotonic()
                    # A full pass means more may be waiting: go again at once.
                    if run_once() > 0:
                        continue
                except Exception:
                    # A failed pass (the database restarting, a bug) must not stop the sender, nor
                    # in scripts/run.sh the server beside it: nothing is lost, the outbox remains.
                    logger.exception("Webhook delivery pass failed; retrying")
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
