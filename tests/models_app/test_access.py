"""The read rule, one for every face: with ``REGISTRY_REQUIRE_LOGIN`` on, an anonymous visitor gets
the login page from every page, a 401 from every API and Intel route (in the OCI error format with
a challenge on /v2/), the admin's login from the admin; only the probes, the login itself and the
API's description stay open."""

import re

import pytest
from django.shortcuts import resolve_url
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

# Open on purpose: liveness/readiness probes, the login and logout, and the OpenAPI description of
# the API (it holds no registry data).
OPEN = {"/healthz", "/readyz", "/health", "/accounts/login/", "/accounts/logout/", "/admin/login/", "/admin/logout/"}
API_DESCRIPTION = ("/api/schema/", "/api/docs/", "/api/redoc/")


def sample_path(prefix, pattern):
    """A path that ``pattern`` matches, with ``x`` for every parameter."""
    text = str(pattern.pattern)
    if text.startswith("^") or text.endswith("$"):  # a regex (routers, the admin)
        text = re.sub(r"\(\?P<\w+>[^)]*\)", "x", text).lstrip("^").rstrip("$").replace("/?", "/").replace("\\.", ".")
    else:
        text = re.sub(r"<[^>]+>", "x", text)
    return prefix + text


def walk(patterns=None, prefix="/"):
    """Every URL the project serves, as a sample path (format-suffix duplicates left out)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, sample_path(prefix, pattern))
        elif isinstance(pattern, URLPattern) and "format" not in str(pattern.pattern):
            yield sample_path(prefix, pattern)


def is_api(path):
    return path.startswith("/api/v1/") or any(path == r or path.startswith(r + "/") for r in ("/models", "/projects"))


def request(client, path):
    """GET, or POST where the URL takes only POSTs (forms that write)."""
    response = client.get(path)
    return client.post(path) if response.status_code == 405 else response


PATHS = sorted(set(walk()))


def test_the_walk_finds_every_face():
    for expected in ("/", "/geti/", "/geti/import/", "/m/x/", "/upload/", "/api/v1/artifacts/", "/models", "/admin/"):
        assert expected in PATHS


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_anonymous_visitors_meet_the_login_everywhere_when_reads_need_one(client, path, settings):
    settings.REGISTRY_REQUIRE_LOGIN = True
    if path in OPEN or path.startswith(API_DESCRIPTION):
        return
    if path == "/v2/x":  # the OCI routes' catch-all: a path no route has is a 404, whoever asks
        assert request(client, path).status_code == 404
        return
    response = request(client, path)
    if path.startswith("/admin/"):
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/?next="), path
    elif path.startswith("/v2/"):
        assert response.status_code == 401, path
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED", path
        assert response["WWW-Authenticate"].startswith(("Bearer ", "Basic ")), path
    elif is_api(path):
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated", path
    else:
        assert response.status_code == 302, path
        assert response["Location"].startswith(resolve_url(settings.LOGIN_URL) + "?next="), path
