"""Pulling over the OCI distribution API (/v2/) with plain HTTP, as a client library does it: a
live server over the real database and the S3 bucket from conftest."""

import json

import pytest
from django.core.cache import cache

from models_app import services
from models_app.models import Artifact

from .oci_helpers import INDEX, MANIFEST, Registry, oci_errors, register, sha256

pytestmark = pytest.mark.django_db(transaction=True)

REPO = "models/person-detection"


@pytest.fixture
def registry(live_server, bucket):
    with Registry(live_server.url) as session:
        yield session


@pytest.fixture
def variants(user):
    """Version 2.0 with an INT8/NPU and an FP16/GPU variant, and the alias production on it."""
    npu = register(
        b"npu-model" * 1000,
        precision="INT8",
        target_device="NPU",
        score=0.91,
        labels=["person", "car"],
        architecture="YOLOX",
    )
    gpu = register(b"gpu-model" * 500, filename="model.bin", precision="FP16", target_device="GPU", score=0.93)
    services.set_alias(registered_model=npu.version.registered_model, name="production", version=npu.version)
    return npu, gpu


def test_the_base_endpoint_answers_with_the_api_version_and_sends_anonymous_clients_for_a_token(registry):
    anonymous = registry.get("/v2/")
    assert anonymous.status_code == 401 and oci_errors(anonymous) == ["UNAUTHORIZED"]
    assert anonymous.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert (
        anonymous.headers["WWW-Authenticate"]
        == f'Bearer realm="{registry.base_url}/v2/token",service="{registry.host}"'
    )
    token = registry.get("/v2/token", params={"service": registry.host})
    assert token.status_code == 200 and token.json()["expires_in"] == 3600
    response = registry.get("/v2/", headers={"Authorization": f"Bearer {token.json()['token']}"})
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_variant_tag_serves_an_artifact_manifest_whose_digest_is_that_of_its_bytes(registry, variants):
    npu, _ = variants
    response = registry.manifest(REPO, "2.0-int8-npu")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == MANIFEST
    assert response.headers["Docker-Content-Digest"] == sha256(response.content)
    assert int(response.headers["Content-Length"]) == len(response.content)
    manifest = response.json()
    assert manifest["mediaType"] == MANIFEST and manifest["artifactType"] == "application/vnd.model-registry.model.v1"
    [layer] = manifest["layers"]
    assert layer == {
        "mediaType": "application/xml",
        "digest": f"sha256:{npu.sha256}",
        "size": npu.size,
        "annotations": {"org.opencontainers.image.title": "model.xml"},
    }
    annotations = manifest["annotations"]
    assert annotations["org.model-registry.precision"] == "INT8"
    assert annotations["org.model-registry.target-device"] == "NPU"
    assert annotations["org.model-registry.format"] == "openvino"
    assert annotations["org.model-registry.score"] == "0.91"
    assert json.loads(annotations["org.model-registry.labels"]) == ["person", "car"]
    # The bytes are canonical: compact, in the image-spec's field order, annotations sorted.
    assert response.content == json.dumps(manifest, separators=(",", ":")).encode()
    assert list(manifest) == ["schemaVersion", "mediaType", "artifactType", "config", "layers", "annotations"]
    assert list(annotations) == sorted(annotations)

    config = registry.get(f"/v2/{REPO}/blobs/{manifest['config']['digest']}")
    assert config.status_code == 200
    assert sha256(config.content) == manifest["config"]["digest"] == config.headers["Docker-Content-Digest"]
    assert len(config.content) == manifest["config"]["size"]
    metadata = config.json()
    assert (metadata["registered_model"], metadata["version"], metadata["artifact_id"]) == (
        "person-detection",
        "2.0",
        str(npu.id),
    )
    assert metadata["sha256"] == npu.sha256 and metadata["architecture"] == "YOLOX"

    file = registry.get(f"/v2/{REPO}/blobs/{layer['digest']}")
    assert file.status_code == 200 and file.content == b"npu-model" * 1000
    assert file.headers["Docker-Content-Digest"] == layer["digest"]


def test_a_version_tag_serves_an_index_of_its_variants_and_its_alias_the_same_one(registry, variants):
    npu, gpu = variants
    version = registry.manifest(REPO, "2.0")
    assert version.status_code == 200, version.text
    assert version.headers["Content-Type"] == INDEX
    index = version.json()
    assert [m["annotations"]["org.model-registry.target-device"] for m in index["manifests"]] == ["GPU", "NPU"]
    for descriptor in index["manifests"]:
        child = registry.manifest(REPO, descriptor["digest"])
        assert child.status_code == 200 and sha256(child.content) == descriptor["digest"]
        assert len(child.content) == descriptor["size"] and child.headers["Content-Type"] == MANIFEST
    alias = registry.manifest(REPO, "production")
    assert alias.content == version.content
    assert alias.headers["Docker-Content-Digest"] == version.headers["Docker-Content-Digest"] == sha256(version.content)
    assert registry.manifest(REPO, "production-int8-npu").content == registry.manifest(REPO, "2.0-int8-npu").content


def test_the_same_rows_give_the_same_bytes_on_every_request_and_replica(registry, variants):
    first = registry.manifest(REPO, "2.0")
    cache.clear()  # another replica: nothing remembered
    by_digest = registry.manifest(REPO, first.headers["Docker-Content-Digest"])
    again = registry.manifest(REPO, "2.0")
    assert first.content == by_digest.content == again.content


def test_head_and_get_agree(registry, variants):
    npu, _ = variants
    for path in (
        f"/v2/{REPO}/manifests/2.0",
        f"/v2/{REPO}/manifests/2.0-int8-npu",
        f"/v2/{REPO}/blobs/sha256:{npu.sha256}",
    ):
        get, head = registry.get(path), registry.head(path)
        assert get.status_code == head.status_code == 200
        assert head.content == b""
        for header in ("Content-Type", "Content-Length", "Docker-Content-Digest"):
            assert head.headers[header] == get.headers[header], header


def test_a_blob_is_served_in_ranges(registry, variants):
    npu, _ = variants
    response = registry.get(f"/v2/{REPO}/blobs/sha256:{npu.sha256}", headers={"Range": "bytes=3-11"})
    assert response.status_code == 206
    assert response.content == (b"npu-model" * 2)[3:12]
    assert response.headers["Content-Range"] == f"bytes 3-11/{npu.size}"


def test_in_redirect_mode_a_blob_answers_307_to_a_presigned_url(registry, variants, settings):
    settings.REGISTRY_DOWNLOAD_MODE = "redirect"
    npu, _ = variants
    response = registry.get(f"/v2/{REPO}/blobs/sha256:{npu.sha256}", allow_redirects=False)
    assert response.status_code == 307
    assert npu.file.name in response.headers["Location"]
    assert registry.get(f"/v2/{REPO}/blobs/sha256:{npu.sha256}").content == b"npu-model" * 1000


def test_unknown_repositories_tags_and_digests_answer_404_with_oci_codes(registry, variants):
    missing = "sha256:" + "0" * 64
    assert oci_errors(registry.manifest("models/nobody", "1")) == ["NAME_UNKNOWN"]
    assert oci_errors(registry.manifest(REPO, "9.9")) == ["MANIFEST_UNKNOWN"]
    assert oci_errors(registry.manifest(REPO, missing)) == ["MANIFEST_UNKNOWN"]
    assert oci_errors(registry.get(f"/v2/{REPO}/blobs/{missing}")) == ["BLOB_UNKNOWN"]
    assert oci_errors(registry.get("/v2/models/nobody/tags/list")) == ["NAME_UNKNOWN"]
    for response in (
        registry.manifest(REPO, "9.9"),
        registry.get(f"/v2/{REPO}/blobs/{missing}"),
        registry.get("/v2/models/nobody/tags/list"),
    ):
        assert response.status_code == 404
    bad = registry.get(f"/v2/{REPO}/blobs/sha256:xyz")
    assert bad.status_code == 400 and oci_errors(bad) == ["DIGEST_INVALID"]
    other = registry.manifest("library/ubuntu", "latest")
    assert other.status_code == 400 and oci_errors(other) == ["NAME_INVALID"]


def test_a_version_with_two_formats_of_a_pair_gives_the_short_tag_to_the_first(registry, variants):
    npu, _ = variants
    onnx = register(b"onnx-model", filename="model.onnx", precision="INT8", target_device="NPU", format="onnx")
    tags = registry.get(f"/v2/{REPO}/tags/list").json()["tags"]
    assert {"2.0-int8-npu", "2.0-int8-npu-openvino", "2.0-int8-npu-onnx"} <= set(tags)
    short = registry.manifest(REPO, "2.0-int8-npu").json()
    assert short["layers"][0]["digest"] == f"sha256:{npu.sha256}"
    assert registry.manifest(REPO, "2.0-int8-npu-onnx").json()["layers"][0]["digest"] == f"sha256:{onnx.sha256}"


def test_tags_list_names_versions_aliases_and_variants(registry, variants):
    response = registry.get(f"/v2/{REPO}/tags/list")
    assert response.status_code == 200
    assert response.json() == {
        "name": REPO,
        "tags": [
            "2.0",
            "2.0-fp16-gpu",
            "2.0-fp16-gpu-openvino",
            "2.0-int8-npu",
            "2.0-int8-npu-openvino",
            "production",
            "production-fp16-gpu",
            "production-fp16-gpu-openvino",
            "production-int8-npu",
            "production-int8-npu-openvino",
        ],
    }


def test_tags_list_pages_past_a_thousand_tags(registry, registered_model):
    from models_app.models import ModelVersion

    ModelVersion.objects.bulk_create(
        ModelVersion(registered_model=registered_model, version=f"1.{i:04d}") for i in range(1100)
    )
    expected = sorted(f"1.{i:04d}" for i in range(1100))
    seen, url = [], f"/v2/{REPO}/tags/list?n=400"
    while url:
        response = registry.get(url)
        assert response.status_code == 200
        seen += response.json()["tags"]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        assert (link is None) == (len(seen) == 1100)
    assert seen == expected
    everything = registry.get(f"/v2/{REPO}/tags/list").json()["tags"]
    assert everything == expected
    after = registry.get(f"/v2/{REPO}/tags/list", params={"n": 2, "last": "1.0998"}).json()["tags"]
    assert after == ["1.0999", "1.1000"]
    none = registry.get(f"/v2/{REPO}/tags/list", params={"n": 0})
    assert none.json()["tags"] == [] and "Link" not in none.headers
    assert oci_errors(registry.get(f"/v2/{REPO}/tags/list", params={"n": "ten"})) == ["PAGINATION_NUMBER_INVALID"]


def test_the_catalog_lists_repositories_in_pages(registry, db):
    from models_app.models import RegisteredModel

    for name in ("yolo-x", "alpha", "b.net", "Not Valid", "zeta_2"):
        RegisteredModel.objects.create(name=name)
    first = registry.get("/v2/_catalog", params={"n": 2})
    assert first.json() == {"repositories": ["models/alpha", "models/b.net"]}
    assert first.headers["Link"] == '</v2/_catalog?n=2&last=models%2Fb.net>; rel="next"'
    rest = registry.get(first.headers["Link"][1 : first.headers["Link"].index(">")]).json()
    assert rest == {"repositories": ["models/yolo-x", "models/zeta_2"]}
    assert registry.get("/v2/_catalog").json()["repositories"] == [
        "models/alpha",
        "models/b.net",
        "models/yolo-x",
        "models/zeta_2",
    ]


def test_reads_need_a_token_when_the_registry_requires_login(registry, variants, settings, user):
    from rest_framework.authtoken.models import Token

    settings.REGISTRY_REQUIRE_LOGIN = True
    refused = registry.manifest(REPO, "2.0")
    assert refused.status_code == 401 and oci_errors(refused) == ["UNAUTHORIZED"]
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{registry.base_url}/v2/token"')
    assert f'scope="repository:{REPO}:pull"' in challenge
    assert registry.get("/v2/token").status_code == 401
    key = Token.objects.create(user=user).key
    token = registry.get("/v2/token", auth=("alice", key), params={"scope": f"repository:{REPO}:pull"})
    assert token.status_code == 200
    bearer = {"Authorization": f"Bearer {token.json()['token']}"}
    assert registry.get(f"/v2/{REPO}/manifests/2.0", headers=bearer).status_code == 200
    assert registry.get(f"/v2/{REPO}/manifests/2.0", auth=("alice", key)).status_code == 200
    assert registry.get(f"/v2/{REPO}/manifests/2.0", auth=("alice", "wrong")).status_code == 401
    assert registry.get("/v2/token", auth=("alice", "wrong")).status_code == 401


def test_an_artifact_deleted_since_leaves_its_tags(registry, variants):
    npu, _ = variants
    Artifact.objects.filter(pk=npu.pk).delete()
    assert oci_errors(registry.manifest(REPO, "2.0-int8-npu")) == ["MANIFEST_UNKNOWN"]


def test_reads_take_a_fixed_number_of_queries_whatever_the_number_of_versions(
    client, variants, django_assert_num_queries
):
    for version in ("2.1", "2.2", "2.3"):
        register(b"more" + version.encode(), version=version, precision="INT8", target_device="NPU")
        register(b"even more" + version.encode(), version=version, precision="FP16", target_device="GPU")
    # The model; its versions; their artifacts; its aliases.
    with django_assert_num_queries(4):
        tags = client.get(f"/v2/{REPO}/tags/list").json()["tags"]
    assert len(tags) == 4 * 5 + 5  # per version and for the alias: itself and four variant tags
    # The model; aliases and versions a tag can name; their artifacts.
    with django_assert_num_queries(4):
        assert client.get(f"/v2/{REPO}/manifests/production-int8-npu").status_code == 200
    with django_assert_num_queries(4):
        assert client.get(f"/v2/{REPO}/manifests/2.3").status_code == 200
    # An index's entries and their config blobs, fetched by digest next: the model and the variant.
    index = client.get(f"/v2/{REPO}/manifests/2.3").json()
    for entry in index["manifests"]:
        with django_assert_num_queries(2):
            manifest = client.get(f"/v2/{REPO}/manifests/{entry['digest']}")
        assert manifest.status_code == 200
        # The model; the variant's file (none: it is the config); pushed blobs (none); the variant.
        with django_assert_num_queries(4):
            assert client.get(f"/v2/{REPO}/blobs/{manifest.json()['config']['digest']}").status_code == 200
    # One query for the names.
    with django_assert_num_queries(1):
        assert client.get("/v2/_catalog").json() == {"repositories": [REPO]}


def test_pushes_and_pulls_work_on_local_files(registry, local_storage, user):
    from rest_framework.authtoken.models import Token

    registry.auth = ("alice", Token.objects.create(user=user).key)
    content = b"a model on local disk"
    assert registry.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": sha256(content)}, data=content).ok
    pushed = registry.put_manifest(REPO, "7", content)
    assert pushed.status_code == 201, pushed.text
    artifact = Artifact.objects.get()
    assert (local_storage / artifact.file.name).read_bytes() == content
    assert registry.get(f"/v2/{REPO}/blobs/{sha256(content)}").content == content
    assert registry.manifest(REPO, "7-fp32-cpu").json()["layers"][0]["digest"] == sha256(content)
