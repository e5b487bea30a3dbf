import pytest
from rest_framework.test import APIClient

from models_app.models import Alias, AliasEvent, AuditEntry, ModelVersion
from tests.conftest import count_queries, grant

pytestmark = pytest.mark.django_db

ALIASES = "/api/v1/registered-models/person-detection/aliases/"


@pytest.fixture
def versions(upload):
    """Versions 1, 2 and 3 of person-detection, each with one FP32/CPU artifact."""
    for label in ("1", "2", "3"):
        assert upload(f"v{label}".encode(), version=label).status_code == 201
    return {v.version: v for v in ModelVersion.objects.all()}


@pytest.fixture
def promoter(django_user_model):
    user = grant(django_user_model.objects.create_user("pat"), "promote_alias")
    client = APIClient()
    client.force_authenticate(user)
    return client


def history(client, alias="staging"):
    response = client.get(f"{ALIASES}{alias}/history/")
    assert response.status_code == 200
    return [(e["action"], e["from_version"], e["to_version"]) for e in response.json()["results"]]


def test_it_creates_an_alias_pointing_to_a_version(api_client, versions):
    response = api_client.put(f"{ALIASES}staging/", {"version": "1", "reason": "first"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["version"], body["version_id"]) == ("staging", "1", str(versions["1"].id))
    assert body["protected"] is False and body["updated_by"] == "alice"
    assert Alias.objects.get().version == versions["1"]


def test_it_sets_an_alias_named_in_the_body(api_client, versions):
    response = api_client.post(ALIASES, {"name": "edge-npu", "version_id": str(versions["2"].id)}, format="json")
    assert response.status_code == 201
    assert api_client.get(f"{ALIASES}edge-npu/").json()["version"] == "2"


def test_moving_an_alias_keeps_every_step_in_history(api_client, versions, user):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    response = api_client.put(f"{ALIASES}staging/", {"version": "2", "reason": "better mAP"}, format="json")
    assert response.status_code == 200
    assert response.json()["version"] == "2"
    assert history(api_client) == [("move", "1", "2"), ("set", "", "1")]
    latest = AliasEvent.objects.first()
    assert (latest.user, latest.reason, latest.from_version, latest.to_version) == (
        user,
        "better mAP",
        versions["1"],
        versions["2"],
    )


def test_setting_an_alias_to_where_it_points_writes_nothing(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    response = api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    assert response.status_code == 200
    assert AliasEvent.objects.count() == 1


def test_rollback_moves_the_alias_back_to_its_previous_version(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    api_client.put(f"{ALIASES}staging/", {"version": "3"}, format="json")
    response = api_client.post(f"{ALIASES}staging/rollback/", {"reason": "regression"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == "1"
    assert Alias.objects.get().version == versions["1"]
    assert history(api_client)[0] == ("rollback", "3", "1")
    assert AliasEvent.objects.first().reason == "regression"


def test_a_second_rollback_undoes_the_first(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    api_client.put(f"{ALIASES}staging/", {"version": "2"}, format="json")
    api_client.post(f"{ALIASES}staging/rollback/")
    response = api_client.post(f"{ALIASES}staging/rollback/")
    assert response.json()["version"] == "2"


def test_rollback_without_a_previous_version_is_a_conflict(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    response = api_client.post(f"{ALIASES}staging/rollback/")
    assert response.status_code == 409
    assert "no previous version" in response.json()["error"]["message"]
    assert Alias.objects.get().version == versions["1"]


def test_rollback_to_a_version_archived_since_is_refused(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    api_client.put(f"{ALIASES}staging/", {"version": "2"}, format="json")
    assert api_client.post(f"/api/v1/versions/{versions['1'].id}/archive/").status_code == 200
    response = api_client.post(f"{ALIASES}staging/rollback/")
    assert response.status_code == 409
    assert "archived" in response.json()["error"]["message"]
    assert Alias.objects.get().version == versions["2"]


def test_rollback_of_an_unknown_alias_is_a_404(api_client, versions):
    response = api_client.post(f"{ALIASES}nope/rollback/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_archived_version_cannot_be_an_alias_target(api_client, versions):
    ModelVersion.objects.filter(pk=versions["2"].pk).update(status="archived")
    response = api_client.put(f"{ALIASES}staging/", {"version": "2"}, format="json")
    assert response.status_code == 409
    assert "archived" in response.json()["error"]["message"]
    assert not Alias.objects.exists() and not AliasEvent.objects.exists()


def test_an_unknown_version_is_a_validation_error(api_client, versions):
    response = api_client.put(f"{ALIASES}staging/", {"version": "9"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["version"] == ["person-detection has no version 9."]


def test_it_requires_exactly_one_way_to_name_the_version(api_client, versions):
    response = api_client.put(f"{ALIASES}staging/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("name", ["-bad", "has space", "x" * 65, "a/b"])
def test_it_refuses_an_alias_name_that_is_not_a_slug(api_client, versions, name):
    response = api_client.post(ALIASES, {"name": name, "version": "1"}, format="json")
    assert response.status_code == 400
    assert not Alias.objects.exists()


def test_alias_names_are_lower_case(api_client, versions):
    assert api_client.put(f"{ALIASES}Staging/", {"version": "1"}, format="json").status_code == 201
    assert Alias.objects.get().name == "staging"


def test_every_alias_route_finds_an_alias_by_any_spelling_of_its_name(api_client, versions):
    assert api_client.post(ALIASES, {"name": " Staging ", "version": "1"}, format="json").status_code == 201
    assert api_client.put(f"{ALIASES}STAGING/", {"version": "2"}, format="json").status_code == 200
    assert api_client.get(f"{ALIASES}StaGing/").json()["version"] == "2"
    assert history(api_client, "Staging") == [("move", "1", "2"), ("set", "", "1")]
    assert api_client.post(f"{ALIASES}STAGING/rollback/", {}, format="json").json()["version"] == "1"
    assert api_client.delete(f"{ALIASES}Staging/").status_code == 204
    assert not Alias.objects.exists()
    assert set(AliasEvent.objects.values_list("alias", flat=True)) == {"staging"}


def test_a_protected_alias_needs_the_promote_permission(api_client, versions):
    response = api_client.put(f"{ALIASES}production/", {"version": "1"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Alias.objects.exists()


def test_a_protected_alias_cannot_be_dodged_with_capitals(api_client, versions):
    assert api_client.put(f"{ALIASES}PRODUCTION/", {"version": "1"}, format="json").status_code == 403
    assert api_client.post(ALIASES, {"name": "Production", "version": "1"}, format="json").status_code == 403


def test_a_user_with_the_promote_permission_moves_a_protected_alias(promoter, api_client, versions):
    assert promoter.put(f"{ALIASES}production/", {"version": "1"}, format="json").status_code == 201
    assert promoter.put(f"{ALIASES}production/", {"version": "2"}, format="json").status_code == 200
    assert api_client.post(f"{ALIASES}production/rollback/").status_code == 403
    assert api_client.delete(f"{ALIASES}production/").status_code == 403
    assert promoter.post(f"{ALIASES}production/rollback/").status_code == 200
    assert Alias.objects.get().version == versions["1"]
    assert api_client.get(f"{ALIASES}production/").json()["protected"] is True


def test_the_protected_list_comes_from_the_setting(api_client, versions, settings):
    settings.REGISTRY_PROTECTED_ALIASES = ["staging"]
    assert api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json").status_code == 403
    assert api_client.put(f"{ALIASES}production/", {"version": "1"}, format="json").status_code == 201


def test_other_aliases_need_the_change_permission(versions, django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("reader"))
    assert client.put(f"{ALIASES}staging/", {"version": "1"}, format="json").status_code == 403
    assert APIClient().put(f"{ALIASES}staging/", {"version": "1"}, format="json").status_code == 401
    assert not Alias.objects.exists()


def test_deleting_an_alias_keeps_its_history(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    response = api_client.delete(f"{ALIASES}staging/", {"reason": "retired"}, format="json")
    assert response.status_code == 204
    assert not Alias.objects.exists()
    assert history(api_client) == [("delete", "1", ""), ("set", "", "1")]
    assert api_client.get(f"{ALIASES}staging/").status_code == 404


def test_a_version_an_alias_points_to_cannot_be_deleted(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    response = api_client.delete(f"/api/v1/versions/{versions['1'].id}/")
    assert response.status_code == 409
    assert "staging" in response.json()["error"]["message"]
    assert ModelVersion.objects.filter(pk=versions["1"].pk).exists()


def test_deleting_the_model_takes_its_aliases(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    assert api_client.delete("/api/v1/registered-models/person-detection/?force=true").status_code == 204
    assert not Alias.objects.exists() and not AliasEvent.objects.exists()
    assert AuditEntry.objects.filter(action="delete", object_type="registeredmodel").get().changes["aliases"] == [
        1,
        None,
    ]


def test_the_history_survives_the_deletion_of_a_version(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "1"}, format="json")
    api_client.put(f"{ALIASES}staging/", {"version": "2"}, format="json")
    assert api_client.delete(f"/api/v1/versions/{versions['1'].id}/").status_code == 204
    assert history(api_client) == [("move", "1", "2"), ("set", "", "1")]
    response = api_client.post(f"{ALIASES}staging/rollback/")
    assert response.status_code == 409
    assert "deleted" in response.json()["error"]["message"]


def test_it_downloads_through_an_alias(api_client, versions):
    api_client.put(f"{ALIASES}staging/", {"version": "2"}, format="json")
    response = api_client.get(f"{ALIASES}staging/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"v2"
    assert response["X-Registry-Version"] == "2"
    assert response["X-Registry-Artifact"] == str(versions["2"].artifacts.get().id)


def test_downloading_through_an_unknown_alias_is_a_404(api_client, versions):
    response = api_client.get(f"{ALIASES}nope/download/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_alias_list_query_count_does_not_grow(api_client, anon_client, versions, django_assert_num_queries):
    api_client.put(f"{ALIASES}a/", {"version": "1"}, format="json")
    few = count_queries(anon_client, ALIASES)
    for name in ("b", "c", "d"):
        api_client.put(f"{ALIASES}{name}/", {"version": "2"}, format="json")
    # registered model, page of aliases with version, model and user joined (a first page that
    # holds every row is its own count)
    with django_assert_num_queries(2):
        response = anon_client.get(ALIASES)
    assert response.json()["count"] == 4
    assert count_queries(anon_client, ALIASES) == few
