"""Django's ``migrate``, one run at a time across hosts.

Every copy of the app migrates as it starts (the Docker image does). Two copies applying the same
new migration at the same moment both create its tables and one fails to start; under the lock
the second waits, then finds nothing left to apply.
"""

from django.core.management.commands.migrate import Command as MigrateCommand

from models_app.lib.locks import one_at_a_time


class Command(MigrateCommand):
    def handle(self, *args, **options):
        with one_at_a_time("migrate"):
            return super().handle(*args, **options)
