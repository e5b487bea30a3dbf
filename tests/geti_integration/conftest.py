"""Fixtures for the Geti integration: a fake Geti server the registry is pointed at through the
same environment variables production uses."""

import pytest

from geti_integration.importer import run_import
from geti_integration.models import ImportJob
from tests.geti_fake import FakeGeti

GETI_VARIABLES = (
    "GETI_HOST",
    "GETI_TOKEN",
    "GETI_SERVER_API_VERSION",
    "GETI_ORGANIZATION_ID",
    "GETI_WORKSPACE_ID",
    "GETI_SERVER_SSL_VERIFY",
)


@pytest.fixture
def geti_off(monkeypatch):
    """The integration switched off: no GETI_* variable set."""
    for name in GETI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def geti(geti_off, monkeypatch, settings):
    """A running fake Geti server, with GETI_HOST and GETI_TOKEN pointing at it."""
    settings.GETI_DEPLOYMENT_POLL_SECONDS = 0.01
    with FakeGeti() as fake:
        monkeypatch.setenv("GETI_HOST", fake.url)
        monkeypatch.setenv("GETI_TOKEN", fake.token)
        yield fake


@pytest.fixture
def immediate_tasks(settings):
    """Run tasks inside the request (django-tasks' ImmediateBackend) instead of queueing them."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def run_queued():
    """What the worker does: run every queued import job, oldest first."""
    for pk in (
        ImportJob.objects.filter(state=ImportJob.State.QUEUED).order_by("created_at").values_list("pk", flat=True)
    ):
        run_import(pk)
