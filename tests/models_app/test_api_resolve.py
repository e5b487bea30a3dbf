import pytest

from models_app.models import Artifact

pytestmark = pytest.mark.django_db

RESOLVE = "/api/v1/registered-models/person-detection/resolve/"

VARIANTS = [  # precision, device, format, score, size
    ("FP32", "CPU", "openvino", "0.90", 400),
    ("FP16", "GPU", "openvino", "0.89", 200),
    ("INT8", "CPU", "openvino", "0.85", 100),
    ("INT8", "AUTO", "openvino", "0.86", 100),
    ("INT8", "NPU", "onnx", "0.80", 90),
]


@pytest.fixture
def variants(upload):
    for precision, device, fmt, score, size in VARIANTS:
        response = upload(b"x" * size, precision=precision, target_device=device, format=fmt, score=score)
        assert response.status_code == 201, response.content
    return {f"{a.precision}/{a.target_device}/{a.format}": a for a in Artifact.objects.all()}


def resolve(client, query):
    return client.get(f"{RESOLVE}?{query}")


def picked(client, query):
    response = resolve(client, query)
    assert response.status_code == 200, response.content
    a = response.json()["artifact"]
    return f"{a['precision']}/{a['target_device']}/{a['format']}"


@pytest.mark.parametrize(
    "query, expected",
    [
        # the caller's precision order comes first
        ("version=1&target_device=CPU&precision=INT8,FP16,FP32", "INT8/CPU/openvino"),
        ("version=1&target_device=CPU&precision=FP32,INT8", "FP32/CPU/openvino"),
        # an exact device match beats a generic AUTO build, even one with a higher score
        ("version=1&target_device=cpu&precision=int8&format=openvino", "INT8/CPU/openvino"),
        # a generic AUTO build serves a device that has no build of its own
        ("version=1&target_device=NPU&precision=INT8&format=openvino", "INT8/AUTO/openvino"),
        # precision before device: an acceptable INT8 AUTO build beats an FP16 build for the GPU
        ("version=1&target_device=GPU&precision=INT8,FP16", "INT8/AUTO/openvino"),
        # without a precision preference, the exact device match and then the score decide
        ("version=1&target_device=CPU", "FP32/CPU/openvino"),
        # no device given: the best score
        ("version=1", "FP32/CPU/openvino"),
        ("version=1&max_size=150&format=openvino", "INT8/AUTO/openvino"),
        ("version=1&format=onnx", "INT8/NPU/onnx"),
    ],
)
def test_it_picks_the_best_variant(api_client, variants, query, expected):
    assert picked(api_client, query) == expected


def test_equal_scores_go_to_the_smaller_file_then_the_newer(api_client, upload):
    upload(b"x" * 300, precision="FP16", score="0.5")
    upload(b"x" * 200, precision="INT8", score="0.5")
    upload(b"x" * 200, precision="FP32", score="0.5")
    upload(b"x" * 100, precision="INT4")  # unscored: last, however small
    assert picked(api_client, "version=1&target_device=CPU") == "FP32/CPU/openvino"
    Artifact.objects.filter(precision="FP32").update(score=0.4)
    assert picked(api_client, "version=1&target_device=CPU") == "INT8/CPU/openvino"


def test_it_returns_the_download_url_and_the_version(api_client, variants):
    response = resolve(api_client, "version=1&target_device=CPU&precision=INT8")
    body = response.json()
    artifact = variants["INT8/CPU/openvino"]
    assert body["version"] == "1" and body["alias"] is None and body["version_status"] == "active"
    assert body["artifact"]["id"] == str(artifact.id)
    assert body["download_url"] == f"http://testserver/api/v1/artifacts/{artifact.id}/download/"
    download = api_client.get(body["download_url"])
    assert b"".join(download.streaming_content) == b"x" * 100


def test_it_resolves_through_an_alias(api_client, variants):
    api_client.put("/api/v1/registered-models/person-detection/aliases/edge/", {"version": "1"}, format="json")
    response = resolve(api_client, "alias=edge&target_device=NPU&format=onnx")
    assert response.status_code == 200
    assert response.json()["alias"] == "edge"
    assert response.json()["artifact"]["id"] == str(variants["INT8/NPU/onnx"].id)


def test_the_alias_download_follows_the_same_ranking(api_client, variants):
    api_client.put("/api/v1/registered-models/person-detection/aliases/edge/", {"version": "1"}, format="json")
    response = api_client.get(
        "/api/v1/registered-models/person-detection/aliases/edge/download/"
        "?target_device=NPU&precision=INT8&format=openvino"
    )
    assert response.status_code == 200
    assert response["X-Registry-Artifact"] == str(variants["INT8/AUTO/openvino"].id)


@pytest.mark.parametrize(
    "query, constraint, available, message",
    [
        (
            "version=1&format=tflite",
            "format",
            ["onnx", "openvino"],
            "ruled out by format=tflite (available: onnx, openvino)",
        ),
        (
            "version=1&format=onnx&target_device=CPU",
            "target_device",
            ["NPU"],
            "ruled out by target_device=CPU (available: NPU)",
        ),
        (
            "version=1&target_device=GPU&precision=INT4,BF16",
            "precision",
            ["FP16", "INT8"],
            "ruled out by precision=INT4,BF16 (available: FP16, INT8)",
        ),
        ("version=1&target_device=CPU&max_size=50", "max_size", [100], "ruled out by max_size=50 (available: 100)"),
    ],
)
def test_it_says_which_constraint_ruled_everything_out(api_client, variants, query, constraint, available, message):
    response = resolve(api_client, query)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "no_matching_variant"
    assert error["constraint"] == constraint and error["available"] == available
    assert message in error["message"]


def test_a_version_without_artifacts_has_no_variant(api_client, registered_model, model_version):
    response = resolve(api_client, "version=1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_matching_variant"


@pytest.mark.parametrize("query", ["version=7", "alias=nope"])
def test_an_unknown_version_or_alias_is_a_404(api_client, variants, query):
    response = resolve(api_client, query)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("query", ["", "version=1&alias=production", "version=1&max_size=big", "version=1&max_size=-1"])
def test_it_needs_one_version_or_alias_and_valid_constraints(api_client, variants, query):
    response = resolve(api_client, query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_an_unknown_model_is_a_404(api_client):
    assert api_client.get("/api/v1/registered-models/nope/resolve/?version=1").status_code == 404


@pytest.mark.parametrize("prepared, queries", [(True, 1), (False, 3)])
def test_the_resolve_query_count_does_not_grow_with_variants(
    api_client, upload, django_assert_num_queries, settings, prepared, queries
):
    upload(b"a", precision="FP32")
    api_client.put("/api/v1/registered-models/person-detection/aliases/edge/", {"version": "1"}, format="json")
    for precision in ("FP16", "INT8", "INT4", "BF16"):
        upload(precision.encode(), precision=precision, target_device="NPU")
    settings.REGISTRY_PREPARED_LISTS = prepared
    # Prepared: the alias's version's variants in one query. Otherwise: the registered model, the
    # alias with its version, the version's artifacts.
    with django_assert_num_queries(queries):
        assert resolve(api_client, "alias=edge&target_device=NPU&precision=INT8").status_code == 200
