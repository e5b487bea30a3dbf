"""Pages that answer at a glance: facets that agree with the cards, the matrix behind an alias,
the compact version page, compare deltas, confirmed alias actions, snippets, CSP and gzip."""

import gzip
import json

import pytest

from models_app import services
from models_app.models import ModelVersion, RegisteredModel

from .test_pages import content, make_artifact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _live_facet_counts(settings):
    settings.REGISTRY_FACET_CACHE_SECONDS = 0


def archived_only_build():
    """``old-onnx`` has its FP16 CPU onnx build only in an archived version; ``live`` in an active one."""
    old = RegisteredModel.objects.create(name="old-onnx")
    archived = old.versions.create(version="1", category="Detection", status=ModelVersion.Status.ARCHIVED)
    make_artifact(archived, "FP16", "CPU", "onnx")
    make_artifact(old.versions.create(version="2", category="Detection"), "FP32", "CPU")
    live = RegisteredModel.objects.create(name="live")
    make_artifact(live.versions.create(version="1", category="Detection"), "FP16", "CPU", "onnx")


def facet(response, name):
    return {
        value: n for facet_name, _, values in response.context["facets"] if facet_name == name for value, n, _ in values
    }


# Facets and cards agree


def test_a_build_only_in_an_archived_version_does_not_match_the_variant_facets(client):
    archived_only_build()
    response = client.get("/", {"precision": "FP16", "target_device": "CPU", "format": "onnx"})
    names = [m.name for m in response.context["page"].object_list]
    assert names == ["live"]


def test_facet_counts_leave_archived_versions_out(client):
    archived_only_build()
    response = client.get("/")
    assert facet(response, "format") == {"onnx": 1, "openvino": 1}
    assert facet(response, "precision") == {"FP16": 1, "FP32": 1}


def test_archived_versions_count_when_asked_for(client):
    archived_only_build()
    response = client.get("/", {"precision": "FP16", "format": "onnx", "include_archived": "1"})
    assert [m.name for m in response.context["page"].object_list] == ["live", "old-onnx"]
    assert facet(response, "format")["onnx"] == 2


def test_a_card_says_where_its_match_is_and_links_to_that_variant(client):
    registered = RegisteredModel.objects.create(name="det")
    older = registered.versions.create(version="1")
    npu = make_artifact(older, "INT8", "NPU", score=0.7)
    make_artifact(registered.versions.create(version="2"), "FP32", "CPU")  # the newest has no INT8 NPU build
    html = content(client.get("/", {"precision": "INT8", "target_device": "NPU"}))
    assert f'href="/m/det/v/1/#variant-{npu.pk}"' in html
    assert "INT8 · NPU · openvino in 1" in html


def test_badges_name_the_format(client):
    registered = RegisteredModel.objects.create(name="det")
    version = registered.versions.create(version="1")
    make_artifact(version, "FP16", "CPU", "onnx")
    make_artifact(version, "FP16", "CPU", "openvino")
    html = content(client.get("/"))
    assert "FP16 · CPU · onnx" in html and "FP16 · CPU · openvino" in html


# The model page: matrix behind production, confirmed alias actions


def test_the_matrix_shows_the_version_behind_production_and_links_each_cell(client):
    registered = RegisteredModel.objects.create(name="det")
    stable = registered.versions.create(version="1")
    cell = make_artifact(stable, "INT8", "NPU")
    make_artifact(registered.versions.create(version="2"), "FP32", "CPU")  # newer, not in production
    services.set_alias(registered_model=registered, name="production", version=stable)
    response = client.get("/m/det/")
    assert response.context["matrix_version"] == stable
    assert f'href="/m/det/v/1/#variant-{cell.pk}"' in content(response)
    assert client.get("/m/det/", {"matrix": "2"}).context["matrix_version"].version == "2"


def test_the_model_page_query_count_is_pinned_with_aliases(client, django_assert_num_queries):
    registered = RegisteredModel.objects.create(name="det")
    for i in range(5):
        version = registered.versions.create(version=str(i))
        make_artifact(version, "INT8", "NPU")
        services.set_alias(registered_model=registered, name=f"a{i}", version=version)
    # model, versions count, versions page with totals, aliases, their versions' devices and
    # precisions, every version label, the matrix's artifacts (production is absent: the first
    # alias's version, already loaded), alias moves, activity
    with django_assert_num_queries(9):
        assert client.get("/m/det/").status_code == 200


@pytest.fixture
def promoter(client, user):
    from tests.conftest import grant

    grant(user, "change_alias", "promote_alias")
    client.force_login(user)
    return client


def test_rolling_back_a_protected_alias_needs_its_name_typed(promoter):
    registered = RegisteredModel.objects.create(name="det")
    one, two = registered.versions.create(version="1"), registered.versions.create(version="2")
    services.set_alias(registered_model=registered, name="production", version=one)
    services.set_alias(registered_model=registered, name="production", version=two)
    response = promoter.post("/m/det/aliases/production/rollback/", {"reason": "oops"}, follow=True)
    assert "Type production to confirm" in content(response)
    assert registered.aliases.get().version == two
    promoter.post("/m/det/aliases/production/rollback/", {"reason": "regression", "confirm": "production"})
    assert registered.aliases.get().version == one
    assert registered.alias_events.first().reason == "regression"


def test_deleting_a_protected_alias_needs_its_name_typed(promoter):
    registered = RegisteredModel.objects.create(name="det")
    services.set_alias(registered_model=registered, name="production", version=registered.versions.create(version="1"))
    promoter.post("/m/det/aliases/production/delete/", {"reason": "x", "confirm": "staging"})
    assert registered.aliases.exists()
    promoter.post("/m/det/aliases/production/delete/", {"reason": "x", "confirm": "production"})
    assert not registered.aliases.exists()


def test_the_confirmation_shows_from_and_to(promoter):
    registered = RegisteredModel.objects.create(name="det")
    one, two = registered.versions.create(version="1"), registered.versions.create(version="2")
    services.set_alias(registered_model=registered, name="production", version=one)
    services.set_alias(registered_model=registered, name="production", version=two)
    html = content(promoter.get("/m/det/"))
    assert "<strong>2</strong> → <strong>1</strong>" in html and 'name="confirm"' in html


# Snippets, score metric


def test_the_snippet_is_plain_text_kept_when_the_description_is_saved(client):
    registered = RegisteredModel.objects.create(
        name="det", description="# det\n\nFinds **people**.\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert registered.description_snippet == "Finds people."
    registered.description = "Now *cars*."
    registered.save(update_fields=["description"])
    registered.refresh_from_db()
    assert registered.description_snippet == "Now cars."
    assert '<p class="desc">Now cars.</p>' in content(client.get("/"))


def test_the_api_shows_and_takes_the_score_metric(api_client):
    version = RegisteredModel.objects.create(name="det").versions.create(version="1", score_metric="mAP@0.5")
    body = api_client.get(f"/api/v1/versions/{version.pk}/").json()
    assert body["score_metric"] == "mAP@0.5"
    api_client.patch(f"/api/v1/versions/{version.pk}/", {"score_metric": "accuracy"}, format="json")
    version.refresh_from_db()
    assert version.score_metric == "accuracy"


# Headers and error pages


def test_every_page_has_a_csp_without_unsafe_inline(client):
    make_artifact(RegisteredModel.objects.create(name="det").versions.create(version="1"))
    for url in ("/", "/m/det/", "/m/det/v/1/", "/compare/", "/api/docs/", "/accounts/login/"):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, url
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_the_policy_is_the_one_django_csp_builds_from_settings_on_pages_and_api_answers(client, settings):
    from csp.utils import build_policy

    RegisteredModel.objects.create(name="det")
    for url in ("/", "/healthz", "/api/v1/registered-models/", "/models", "/api/v1/registered-models/nope/"):
        assert client.get(url)["Content-Security-Policy"] == build_policy(), url
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}, "EXCLUDE_URL_PREFIXES": ["/api/"]}
    assert client.get("/")["Content-Security-Policy"] == "default-src 'none'"
    assert "Content-Security-Policy" not in client.get("/api/v1/registered-models/")
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}
    assert client.get("/")["Content-Security-Policy-Report-Only"] == build_policy(report_only=True)
    assert "img-src 'self'" in build_policy(report_only=True)


def test_a_view_that_changes_the_policy_still_gets_its_own(client):
    assert "style-src 'self' 'unsafe-inline'" in client.get("/api/redoc/")["Content-Security-Policy"]
    assert "unsafe-inline" not in client.get("/api/docs/")["Content-Security-Policy"]


def test_the_api_docs_are_served_from_our_static_files(client):
    html = content(client.get("/api/docs/"))
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html and "cdn.jsdelivr" not in html
    assert 'href="/"' in html  # a way back to the registry
    assert "/static/drf_spectacular_sidecar/redoc/" in content(client.get("/api/redoc/"))


def test_html_is_gzipped_for_clients_that_accept_it(client):
    make_artifact(RegisteredModel.objects.create(name="det").versions.create(version="1"))
    response = client.get("/", HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert b"Model Registry" in gzip.decompress(response.content)
    assert "Content-Encoding" not in client.get("/")


def test_small_api_answers_are_not_gzipped_and_large_ones_are(api_client):
    registered = RegisteredModel.objects.create(name="det")
    for number in range(1, 11):
        registered.versions.create(version=str(number), description="A detector for people and cars. " * 3)
    small = api_client.get("/api/v1/registered-models/det/versions/3/", HTTP_ACCEPT_ENCODING="gzip")
    assert small.status_code == 200 and "Content-Encoding" not in small
    assert len(small.content) < 1024 and small.json()["version"] == "3"
    large = api_client.get("/api/v1/versions/", {"registered_model": "det"}, HTTP_ACCEPT_ENCODING="gzip")
    assert large.status_code == 200 and large["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(large.content))["results"]) == 10


def test_a_download_is_not_gzipped(api_client, artifact):
    response = api_client.get(f"/api/v1/artifacts/{artifact.pk}/download/", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code in (200, 302)
    assert "Content-Encoding" not in response


def test_the_404_page_has_the_site_layout_and_a_search_box(client):
    response = client.get("/m/nope/")
    html = content(response)
    assert response.status_code == 404
    assert 'class="brand"' in html and 'type="search" name="q"' in html


def test_the_500_page_has_the_site_layout(client):
    from registry_project.urls import server_error

    response = server_error(client.get("/").wsgi_request)
    assert response.status_code == 500
    assert b'class="brand"' in response.content and b'name="q"' in response.content


# Compare


def test_compare_shows_deltas_labels_and_key_value_differences_against_the_first(client):
    registered = RegisteredModel.objects.create(name="det")
    one = registered.versions.create(version="1", labels=["person"], tags={"team": "a", "old": "x"})
    two = registered.versions.create(
        version="2", labels=["person", "car"], tags={"team": "b", "new": "y"}, derived_from=one
    )
    make_artifact(one, score=0.80, size=2000)
    make_artifact(two, score=0.85, size=1000)
    html = content(client.get("/compare/", {"versions": f"{one.pk},{two.pk}"}))
    assert '<span class="delta up">+0.05</span>' in html and '<span class="delta up">-1000\xa0bytes</span>' in html
    assert '<span class="label-added">+car</span>' in html
    assert '<li class="added">+ new: y</li>' in html and '<li class="removed">old: x</li>' in html
    assert '<li class="changed">team: b</li>' in html
    assert '<a href="/m/det/v/1/">det:1</a>' in html  # derived-from as a link, not an id
    assert '<tr><th scope="row">Version</th>' in html  # always differs: not highlighted
    assert "Size (log scale)" in html


def test_the_upload_page_may_connect_to_the_s3_endpoint_for_direct_uploads(client, user, s3_endpoint):
    from tests.conftest import grant

    grant(user, "add_artifact")
    client.force_login(user)
    policy = client.get("/upload/")["Content-Security-Policy"]
    assert f"connect-src 'self' {s3_endpoint}" in policy
    assert "connect-src 'self';" in client.get("/")["Content-Security-Policy"] + ";"


@pytest.mark.parametrize("count", [5, 40])
def test_the_table_view_query_count_does_not_grow_with_the_data(client, django_assert_num_queries, count):
    from .test_pages import make_models

    make_models(count)
    # page count, page of models with stats, newest live version per model with its creator, their
    # artifacts, the models' aliases, 6 facet counts (category, precision, target device, format,
    # origin, tag)
    with django_assert_num_queries(11):
        response = client.get("/", {"view": "table"})
    assert content(response).count('class="model-line"') == min(count, 25)


@pytest.mark.parametrize("derived", [False, True])
def test_the_compare_page_query_count_is_fixed(client, django_assert_num_queries, derived):
    registered = RegisteredModel.objects.create(name="det")
    versions = [registered.versions.create(version=str(i)) for i in range(4)]
    for version in versions:
        make_artifact(version, "FP16", "GPU", score=0.5)
        make_artifact(version, "INT8", "NPU", score=0.4)
    if derived:
        for older, newer in zip(versions, versions[1:]):
            ModelVersion.objects.filter(pk=newer.pk).update(derived_from=older)
    ids = ",".join(str(v.pk) for v in versions)
    # the versions with model and creator, their artifacts, and (only when some are derived) the
    # derived-from versions to link to
    with django_assert_num_queries(3 if derived else 2):
        assert client.get("/compare/", {"versions": ids}).status_code == 200
