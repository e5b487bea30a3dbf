"""Reads, aliases, deletes, errors and Geti imports through the Python client, against a live registry."""

import pytest
from registry_client import AuthenticationError, Conflict, NotFound, PermissionDenied, Registry, ValidationError

from models_app.models import Artifact, RegisteredModel
from tests import geti_fake as fx
from tests.conftest import grant
from tests.geti_integration.conftest import geti, geti_off, immediate_tasks  # noqa: F401  (fixtures)

from .conftest import MiB

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def versions(registry, model_file):
    """person-detection 1 and 2, each with an INT8/NPU and an FP16/CPU variant."""
    for version in ("1", "2"):
        for precision, device in (("INT8", "NPU"), ("FP16", "CPU")):
            path = model_file(MiB // 4, name=f"{version}-{precision}.bin")
            registry.push(
                path,
                model="person-detection",
                version=version,
                precision=precision,
                target_device=device,
                score=0.5 if precision == "FP16" else 0.8,
            )


def test_lists_walk_every_page_past_500(registry, served):
    RegisteredModel.objects.bulk_create(RegisteredModel(name=f"model-{i:04d}") for i in range(1201))

    names = [row["name"] for row in registry.models()]

    assert names == [f"model-{i:04d}" for i in range(1201)]
    assert [q for _, p, q, _ in served if p == "/api/v1/registered-models/"] == [
        "page_size=500",
        "page=2&page_size=500",
        "page=3&page_size=500",
    ]


def test_filters_are_keyword_arguments(registry, versions):
    rows = list(registry.artifacts(registered_model="person-detection", precision="int8", ordering="-version__version"))

    assert [(r["version"], r["precision"], r["target_device"]) for r in rows] == [
        ("2", "INT8", "NPU"),
        ("1", "INT8", "NPU"),
    ]
    assert [r["version"] for r in registry.search("person", version="1", score_min=0.7)] == ["1"]
    assert len(list(registry.artifacts(limit=3))) == 3


def test_it_gets_a_model_a_version_and_its_variants(registry, versions):
    assert registry.model("person-detection")["name"] == "person-detection"
    version = registry.version("person-detection", "2")
    assert version["version"] == "2" and version["artifact_count"] == 2
    variants = registry.variants("person-detection", "2")
    assert sorted(v["precision"] for v in variants) == ["FP16", "INT8"]
    assert registry.artifact(variants[0]["id"])["id"] == variants[0]["id"]


def test_errors_carry_the_registry_s_json_error(registry, versions):
    with pytest.raises(NotFound) as missing:
        registry.model("nope")
    assert (missing.value.status, missing.value.code) == (404, "not_found")

    with pytest.raises(NotFound) as unmatched:
        registry.resolve("person-detection", version="1", target_device="GPU")
    assert unmatched.value.code == "no_matching_variant"
    assert unmatched.value.extra["constraint"] == "target_device"

    with pytest.raises(ValidationError) as invalid:
        registry.resolve("person-detection", version="1", alias="production")
    assert invalid.value.status == 400

    with pytest.raises(Conflict):
        registry.delete_model("person-detection")


def test_a_wrong_token_is_an_authentication_error(live_server, versions):
    with pytest.raises(AuthenticationError) as caught:
        list(Registry(live_server.url, "not-a-token").models())

    assert caught.value.status == 401 and caught.value.code == "authentication_failed"


def test_a_write_without_the_permission_is_refused(live_server, django_user_model, model_file):
    from rest_framework.authtoken.models import Token

    reader = django_user_model.objects.create_user("reader")
    with pytest.raises(PermissionDenied) as caught:
        Registry(live_server.url, Token.objects.create(user=reader).key).push(
            model_file(100), model="m", version="1", direct=False
        )
    assert caught.value.status == 403 and Artifact.objects.count() == 0


def test_resolve_picks_the_best_variant_for_a_device(registry, versions):
    resolved = registry.resolve("person-detection", version="2", target_device="NPU", precision=["INT8", "FP16"])

    assert resolved["version"] == "2" and resolved["artifact"]["precision"] == "INT8"


def test_aliases_set_move_roll_back_and_keep_their_history(registry, versions, tmp_path, user):
    grant(user, "promote_alias")  # production is a protected alias
    assert registry.set_alias("person-detection", "production", "1")["version"] == "1"
    assert registry.move_alias("person-detection", "production", "2", reason="better")["version"] == "2"
    assert registry.pull("person-detection", alias="production", target_device="NPU", dest=tmp_path).path.name == (
        "2-INT8.bin"
    )

    assert registry.rollback_alias("person-detection", "production")["version"] == "1"

    history = list(registry.alias_history("person-detection", "production"))
    assert [(e["action"], e["from_version"], e["to_version"]) for e in history] == [
        ("rollback", "2", "1"),
        ("move", "1", "2"),
        ("set", "", "1"),
    ]
    assert [a["name"] for a in registry.aliases("person-detection")] == ["production"]
    registry.delete_alias("person-detection", "production")
    with pytest.raises(NotFound):
        registry.alias("person-detection", "production")


def test_pull_without_version_or_alias_takes_the_latest_version(registry, versions, tmp_path):
    assert registry.pull("person-detection", precision="FP16", dest=tmp_path).artifact["version"] == "2"


def test_compare_and_delete(registry, versions, bucket):
    ids = [registry.version("person-detection", v)["id"] for v in ("1", "2")]
    assert [item["id"] for item in registry.compare(versions=ids)["items"]] == ids

    registry.delete_version("person-detection", "1")
    assert [v["version"] for v in registry.versions("person-detection")] == ["2"]
    registry.delete_model("person-detection", force=True)
    assert RegisteredModel.objects.count() == 0 and list(bucket.objects.all()) == []


def test_a_geti_import_is_started_and_followed_to_its_end(registry, geti, immediate_tasks):  # noqa: F811
    seen = []

    jobs = registry.geti_import(fx.WIDGETS, [fx.WIDGETS_INT8])
    done = registry.wait_for_imports(jobs, progress=seen.append, poll=0.05, timeout=60)

    assert [(j["optimized_model_id"], j["state"]) for j in done] == [(fx.WIDGETS_INT8, "done")]
    artifact = Artifact.objects.get()
    assert done[0]["artifact"]["sha256"] == artifact.sha256 and artifact.precision == "INT8"
    assert seen and seen[-1] == done
