import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from models_app.lib.locks import one_at_a_time


class Command(BaseCommand):
    help = "Make sure an admin account exists and print how to log in (used by `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("REGISTRY_ADMIN_USER", "admin"))
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args, username, url, **options):
        """The password comes from REGISTRY_ADMIN_PASSWORD, or is generated once and kept in
        var/admin-password (readable only by its owner) so every start can print it again. Copies of
        the app starting at once take turns: the first creates the account, the others find it."""
        with one_at_a_time("ensure_admin"):
            self._ensure(username, url)

    def _ensure(self, username, url):
        User = get_user_model()
        password_file = Path(settings.VAR_DIR) / "admin-password"
        password = os.environ.get("REGISTRY_ADMIN_PASSWORD", "")
        user = User.objects.filter(username=username).first()
        if user is None:
            password = password or secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        elif not password and password_file.exists():
            password = password_file.read_text().strip()
        shown = password or "(the password you set earlier)"
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Model Registry: {url}/\n  Admin:          {url}/admin/  user {username!r}, password {shown}\n"
                f"  API docs:       {url}/api/docs/\n  API token:      python manage.py issue_token {username}\n"
            )
        )
