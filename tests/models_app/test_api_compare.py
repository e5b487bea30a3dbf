import hashlib
import uuid

import pytest

from models_app.models import Artifact, ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(upload):
    upload(
        b"a" * 100,
        version="1",
        precision="FP32",
        score="0.80",
        labels='["person", "car"]',
        architecture="YOLOX",
        tags='{"stage": "qa"}',
    )
    upload(b"b" * 50, version="1", precision="INT8", score="0.75")
    upload(
        b"c" * 120,
        version="2",
        precision="FP32",
        score="0.85",
        labels='["person", "bike"]',
        architecture="YOLOX",
        tags='{"stage": "prod"}',
    )
    upload(b"d" * 60, version="2", precision="FP16", score="0.84")
    return ModelVersion.objects.get(version="1"), ModelVersion.objects.get(version="2")


def fields(body):
    return {row["field"]: row for row in body["fields"]}


def test_it_compares_versions_field_by_field(api_client, two_versions):
    v1, v2 = two_versions
    response = api_client.get(f"/api/v1/compare/?versions={v1.id},{v2.id}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["kind"] == "versions"
    assert [i["label"] for i in body["items"]] == ["person-detection:1", "person-detection:2"]
    rows = fields(body)
    assert rows["architecture"] == {"field": "architecture", "values": ["YOLOX", "YOLOX"], "differs": False}
    assert rows["tags"]["values"] == [{"stage": "qa"}, {"stage": "prod"}] and rows["tags"]["differs"]
    assert rows["labels"]["values"] == [["car", "person"], ["bike", "person"]]
    assert rows["labels"]["added"] == [[], ["bike"]] and rows["labels"]["removed"] == [[], ["car"]]
    assert rows["total_size"]["values"] == [150, 180] and rows["total_size"]["deltas"] == [0, 30]
    assert rows["artifact_count"]["differs"] is False


def test_it_lines_variants_up_with_score_and_size_deltas(api_client, two_versions):
    v1, v2 = two_versions
    variants = {
        row["variant"]: row for row in api_client.get(f"/api/v1/compare/?versions={v1.id},{v2.id}").json()["variants"]
    }
    assert set(variants) == {"FP32/CPU/openvino", "INT8/CPU/openvino", "FP16/CPU/openvino"}
    fp32 = variants["FP32/CPU/openvino"]
    assert [c["sha256"] for c in fp32["values"]] == [
        hashlib.sha256(b"a" * 100).hexdigest(),
        hashlib.sha256(b"c" * 120).hexdigest(),
    ]
    assert fp32["differs"] is True
    assert fp32["score_deltas"] == [0.0, pytest.approx(0.05)] and fp32["size_deltas"] == [0, 20]
    int8 = variants["INT8/CPU/openvino"]
    assert int8["values"][1] is None and int8["score_deltas"] == [0.0, None]


def test_it_compares_artifacts(api_client, two_versions):
    a = Artifact.objects.get(version__version="1", precision="FP32")
    b = Artifact.objects.get(version__version="2", precision="FP32")
    c = Artifact.objects.get(version__version="1", precision="INT8")
    body = api_client.get(f"/api/v1/compare/?artifacts={a.id},{b.id},{c.id}").json()
    assert body["kind"] == "artifacts" and len(body["items"]) == 3
    rows = fields(body)
    assert rows["score"]["values"] == [0.8, 0.85, 0.75]
    assert rows["score"]["deltas"] == [0.0, pytest.approx(0.05), pytest.approx(-0.05)]
    assert rows["size"]["deltas"] == [0, 20, -50]
    assert rows["sha256"]["differs"] is True
    assert rows["format"] == {"field": "format", "values": ["openvino"] * 3, "differs": False}
    assert rows["precision"]["values"] == ["FP32", "FP32", "INT8"]


@pytest.mark.parametrize(
    "query", ["versions={a}", "versions=", "versions={a},{a}", "versions=1,2", "", "versions={a}&artifacts={a}"]
)
def test_it_refuses_fewer_than_two_or_malformed_ids(api_client, two_versions, query):
    v1, _ = two_versions
    response = api_client.get("/api/v1/compare/?" + query.format(a=v1.id))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_it_refuses_more_than_the_maximum(api_client, two_versions):
    ids = ",".join(str(uuid.uuid4()) for _ in range(21))
    response = api_client.get(f"/api/v1/compare/?versions={ids}")
    assert response.status_code == 400
    assert "between 2 and 20" in str(response.json()["error"]["fields"])


def test_unknown_ids_are_named_in_a_404(api_client, two_versions):
    v1, _ = two_versions
    missing = uuid.uuid4()
    response = api_client.get(f"/api/v1/compare/?versions={v1.id},{missing}")
    assert response.status_code == 404
    assert str(missing) in response.json()["error"]["message"]


def test_the_comparison_query_count_does_not_grow(api_client, upload, django_assert_num_queries):
    for label in range(6):
        upload(str(label).encode(), version=str(label))
    ids = [str(v.id) for v in ModelVersion.objects.all()]
    # versions with model and creator joined, their artifacts
    with django_assert_num_queries(2):
        assert api_client.get(f"/api/v1/compare/?versions={','.join(ids[:2])}").status_code == 200
    with django_assert_num_queries(2):
        assert api_client.get(f"/api/v1/compare/?versions={','.join(ids)}").status_code == 200
