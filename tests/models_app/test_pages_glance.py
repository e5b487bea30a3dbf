"""Pages that answer at a glance: facets that agree with the cards, the matrix behind an alias,
the compact version page, compare deltas, confirmed alias actions, snippets, CSP and gzip."""

import pytest

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
