"""The settings a deployment starts with: the SECRET_KEY it must have, and the production settings
behind TLS that docs/deployment.md gives."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_BEHIND_TLS = {
    "SECRET_KEY": "a-long-random-production-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "registry.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_COOKIES": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


# What the test process sets for itself (the browser fixture's async-safety switch) is not part of
# a deployment's environment.
NOT_DEPLOYED = {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def run(args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in NOT_DEPLOYED}
    return subprocess.run(args, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_serving_refuses_to_start_without_a_secret_key():
    result = run([sys.executable, "-c", "import registry_project.wsgi"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "SECRET_KEY is not set: set SECRET_KEY (or SECRET_KEY_FILE) to a long random string; "
        "`make run` keeps one in var/secret-key."
    ]


def test_debug_does_not_make_a_missing_key_acceptable():
    assert run([sys.executable, "-c", "import registry_project.wsgi"], DEBUG="true").returncode == 1


def test_serving_starts_with_the_key_make_run_keeps(tmp_path):
    key_file = tmp_path / "var" / "secret-key"
    subprocess.run(["bash", "scripts/ensure-secret-key.sh", str(key_file)], cwd=ROOT, check=True)
    key = key_file.read_text()
    subprocess.run(["bash", "scripts/ensure-secret-key.sh", str(key_file)], cwd=ROOT, check=True)
    assert key_file.read_text() == key and len(key.strip()) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600
    code = "import registry_project.wsgi; from django.conf import settings; print(settings.SECRET_KEY)"
    result = run([sys.executable, "-c", code], SECRET_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key.strip()


def test_check_deploy_flags_a_missing_secret_key():
    result = run([sys.executable, "manage.py", "check", "--deploy"])
    assert result.returncode == 1
    assert "models_app.E001" in result.stderr and "SECRET_KEY is not set" in result.stderr


def test_check_deploy_passes_with_the_production_settings_behind_tls():
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION_BEHIND_TLS)
    assert result.returncode == 0, result.stderr


def test_a_key_file_that_is_not_there_yet_counts_as_no_key(tmp_path):
    result = run([sys.executable, "-c", "import registry_project.wsgi"], SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode == 1 and result.stderr.strip().startswith("SECRET_KEY is not set")
