"""skopeo (the containers/image tool Kubernetes sites use to mirror registries) against a live
server: inspect, list tags, and copy variants and version indexes to an OCI layout and an
oci-archive, then check every blob of the copy against the registry's sha256.

These tests fail, not skip, without skopeo: `make test` installs it (scripts/ensure-skopeo.sh).
"""

import hashlib
import json
import shutil
import subprocess
import tarfile

import pytest

from models_app import services

from .oci_helpers import INDEX, MANIFEST, register

pytestmark = pytest.mark.django_db(transaction=True)

REPO = "models/person-detection"


def skopeo(*args):
    binary = shutil.which("skopeo")
    assert binary, "skopeo is missing: run scripts/ensure-skopeo.sh (apt-get install skopeo)"
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def host(live_server, bucket):
    return live_server.url.split("://", 1)[1]


@pytest.fixture
def variants(user):
    npu = register(b"npu-model" * 1000, precision="INT8", target_device="NPU", score=0.91)
    gpu = register(b"gpu-model" * 700, filename="model.bin", precision="FP16", target_device="GPU")
    services.set_alias(registered_model=npu.version.registered_model, name="production", version=npu.version)
    return npu, gpu


def source(host, reference):
    return f"docker://{host}/{REPO}:{reference}"


def check_layout(directory):
    """Every blob of an OCI layout has the digest it is stored under; returns them by digest."""
    blobs = {}
    for path in (directory / "blobs" / "sha256").iterdir():
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == path.name
        blobs[f"sha256:{path.name}"] = data
    return blobs


def test_skopeo_inspects_a_version_and_an_alias(host, variants):
    npu, gpu = variants
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", source(host, "2.0")))
    assert raw["mediaType"] == INDEX and len(raw["manifests"]) == 2
    alias = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", source(host, "production")))
    assert alias == raw
    variant = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", source(host, "production-int8-npu")))
    assert variant["mediaType"] == MANIFEST and variant["layers"][0]["digest"] == f"sha256:{npu.sha256}"
    config = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", "--config", source(host, "2.0-fp16-gpu")))
    assert config["artifact_id"] == str(gpu.id) and config["precision"] == "FP16"


def test_skopeo_lists_the_tags(host, variants):
    listed = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{host}/{REPO}"))
    assert listed["Repository"].endswith(REPO)
    assert {"2.0", "production", "2.0-int8-npu", "2.0-fp16-gpu-openvino"} <= set(listed["Tags"])


def test_skopeo_copies_a_variant_to_an_oci_layout_with_the_registrys_digests(host, variants, tmp_path):
    npu, _ = variants
    skopeo("copy", "--src-tls-verify=false", source(host, "2.0-int8-npu"), f"oci:{tmp_path / 'layout'}:2.0-int8-npu")
    blobs = check_layout(tmp_path / "layout")
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    [descriptor] = index["manifests"]
    manifest = json.loads(blobs[descriptor["digest"]])
    assert manifest["layers"][0]["digest"] == f"sha256:{npu.sha256}"
    assert blobs[f"sha256:{npu.sha256}"] == b"npu-model" * 1000
    assert manifest["config"]["digest"] in blobs


def test_skopeo_copies_a_version_index_to_a_layout_and_an_archive(host, variants, tmp_path):
    npu, gpu = variants
    raw = skopeo("inspect", "--tls-verify=false", "--raw", source(host, "2.0")).encode()
    skopeo("copy", "--all", "--src-tls-verify=false", source(host, "2.0"), f"oci:{tmp_path / 'layout'}:2.0")
    blobs = check_layout(tmp_path / "layout")
    # The index was copied as the registry serves it, byte for byte, with both variants' files.
    assert blobs[f"sha256:{hashlib.sha256(raw).hexdigest()}"] == raw
    assert blobs[f"sha256:{npu.sha256}"] == b"npu-model" * 1000
    assert blobs[f"sha256:{gpu.sha256}"] == b"gpu-model" * 700

    archive = tmp_path / "models.tar"
    skopeo("copy", "--all", "--src-tls-verify=false", source(host, "production"), f"oci-archive:{archive}:production")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert check_layout(tmp_path / "unpacked") == blobs


def test_skopeo_pushes_a_copied_variant_into_the_registry(host, variants, tmp_path, user):
    from rest_framework.authtoken.models import Token

    from models_app.models import Artifact, BlobUpload

    npu, _ = variants
    key = Token.objects.create(user=user).key
    skopeo("copy", "--src-tls-verify=false", source(host, "2.0-int8-npu"), f"oci:{tmp_path / 'layout'}:v")
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"alice:{key}",
        f"oci:{tmp_path / 'layout'}:v",
        f"docker://{host}/models/mirrored:2.0-int8-npu",
    )
    copy = Artifact.objects.with_version().get(version__registered_model__name="mirrored")
    # The version came from the manifest's annotation, not from the tag pushed to.
    assert (copy.version.version, copy.precision, copy.target_device, copy.score) == ("2.0", "INT8", "NPU", 0.91)
    assert copy.sha256 == npu.sha256 and copy.file.name != npu.file.name
    assert not BlobUpload.objects.exists()


def test_skopeo_copies_a_whole_version_into_another_registry_of_models(host, variants, tmp_path, user):
    from rest_framework.authtoken.models import Token

    from models_app.models import Artifact

    npu, gpu = variants
    key = Token.objects.create(user=user).key
    skopeo("copy", "--all", "--src-tls-verify=false", source(host, "2.0"), f"oci:{tmp_path / 'layout'}:2.0")
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"alice:{key}",
        f"oci:{tmp_path / 'layout'}:2.0",
        f"docker://{host}/models/site-copy:2.0",
    )
    copies = Artifact.objects.filter(version__registered_model__name="site-copy", version__version="2.0")
    assert sorted((a.precision, a.target_device, a.sha256) for a in copies) == sorted(
        (a.precision, a.target_device, a.sha256) for a in (npu, gpu)
    )
    index = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{host}/models/site-copy:2.0"))
    assert [m["annotations"]["org.model-registry.target-device"] for m in index["manifests"]] == ["GPU", "NPU"]
