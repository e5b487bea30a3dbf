"""Aliases, activity and lineage on the model and version pages, and aliases in the admin."""

import pytest
from django.test import Client

from models_app.models import Alias, AliasEvent, AuditEntry, ModelVersion, RegisteredModel
from tests.conftest import count_queries, grant

pytestmark = pytest.mark.django_db

MODEL_PAGE = "/m/person-detection/"


@pytest.fixture
def versions(upload):
    for label in ("1", "2"):
        upload(label.encode(), version=label)
    return {v.version: v for v in ModelVersion.objects.all()}


def test_the_model_page_shows_aliases_their_moves_and_activity(user_client, api_client, versions):
    api_client.put("/api/v1/registered-models/person-detection/aliases/staging/", {"version": "1"}, format="json")
    api_client.put(
        "/api/v1/registered-models/person-detection/aliases/staging/",
        {"version": "2", "reason": "better recall"},
        format="json",
    )
    html = user_client.get(MODEL_PAGE).content.decode()
    assert 'id="aliases"' in html and "<strong>staging</strong>" in html
    assert "moved staging from 1 to 2: better recall" in html
    assert 'action="/api/v1/registered-models/person-detection/resolve/"' in html  # resolve before download
    assert 'id="audit"' in html and "moved alias person-detection@staging" in html and "uploaded" in html


def test_the_model_page_hides_archived_versions_unless_asked(user_client, versions):
    ModelVersion.objects.filter(version="2").update(status="archived")
    assert 'href="/m/person-detection/v/2/"' not in user_client.get(MODEL_PAGE).content.decode()
    assert 'href="/m/person-detection/v/2/"' in user_client.get(MODEL_PAGE + "?include_archived=1").content.decode()


def test_the_model_page_query_count_does_not_grow(user_client, api_client, upload):
    upload(b"1", version="1")
    api_client.put("/api/v1/registered-models/person-detection/aliases/a/", {"version": "1"}, format="json")
    few = count_queries(user_client, MODEL_PAGE)
    for label in ("2", "3", "4"):
        upload(label.encode(), version=label)
        api_client.put(
            f"/api/v1/registered-models/person-detection/aliases/a{label}/", {"version": label}, format="json"
        )
    assert count_queries(user_client, MODEL_PAGE) == few


def test_the_version_page_shows_lineage_and_provenance(user_client, api_client, upload):
    fp32 = upload(b"full", precision="FP32").json()
    upload(b"int8", precision="INT8", derived_from=fp32["id"])
    base = ModelVersion.objects.get()
    api_client.post(
        "/api/v1/versions/",
        {
            "registered_model": "person-detection",
            "version": "2",
            "derived_from": str(base.id),
            "provenance": {"dataset": "coco-2017", "commit": "4f2a9c1"},
        },
        format="json",
    )
    html = user_client.get("/m/person-detection/v/1/").content.decode()
    assert 'id="lineage"' in html
    assert 'href="/m/person-detection/v/2/"' in html  # derived versions
    assert "<td>INT8/CPU/openvino</td>" in html and "FP32/CPU/openvino</td></tr>" in html
    html = user_client.get("/m/person-detection/v/2/").content.decode()
    assert 'href="/m/person-detection/v/1/">person-detection:1</a>' in html
    assert "<dt>dataset</dt><dd>coco-2017</dd>" in html


def test_the_version_page_query_count_does_not_grow(user_client, upload):
    first = upload(b"a", precision="FP32").json()
    few = count_queries(user_client, "/m/person-detection/v/1/")
    for precision in ("FP16", "INT8", "INT4"):
        upload(precision.encode(), precision=precision, derived_from=first["id"])
    base = ModelVersion.objects.get()
    for label in ("2", "3", "4"):
        upload(label.encode(), version=label)
        ModelVersion.objects.filter(version=label).update(derived_from=base)
    assert count_queries(user_client, "/m/person-detection/v/1/") == few  # now with derivatives
    assert count_queries(user_client, "/m/person-detection/v/2/") == few  # derived from 1


def test_a_user_sets_rolls_back_and_deletes_an_alias_from_the_page(user_client, versions):
    response = user_client.post(f"{MODEL_PAGE}aliases/", {"name": "staging", "version": versions["1"].pk})
    assert response.status_code == 302 and response["Location"] == MODEL_PAGE + "#aliases"
    user_client.post(f"{MODEL_PAGE}aliases/", {"name": "staging", "version": versions["2"].pk, "reason": "try 2"})
    assert Alias.objects.get().version == versions["2"]
    user_client.post(f"{MODEL_PAGE}aliases/staging/rollback/")
    assert Alias.objects.get().version == versions["1"]
    user_client.post(f"{MODEL_PAGE}aliases/staging/delete/")
    assert not Alias.objects.exists()
    assert [e.action for e in AliasEvent.objects.order_by("id")] == ["set", "move", "rollback", "delete"]


def test_the_page_explains_a_refused_alias_move(user_client, versions):
    ModelVersion.objects.filter(version="2").update(status="archived")
    response = user_client.post(f"{MODEL_PAGE}aliases/", {"name": "staging", "version": versions["2"].pk}, follow=True)
    assert "is archived; an alias cannot point to it" in response.content.decode()
    assert not Alias.objects.exists()


def test_the_page_refuses_a_protected_alias_without_the_permission(user_client, versions, user):
    production = {"name": "production", "version": versions["1"].pk}
    assert user_client.post(f"{MODEL_PAGE}aliases/", production).status_code == 403
    grant(user, "promote_alias")
    user = type(user).objects.get(pk=user.pk)  # fresh permission cache
    user_client.force_login(user)
    assert user_client.post(f"{MODEL_PAGE}aliases/", production).status_code == 302
    assert Alias.objects.get().name == "production"


def test_the_page_stores_an_alias_name_in_its_one_lower_case_form(user_client, versions):
    user_client.post(f"{MODEL_PAGE}aliases/", {"name": " Staging ", "version": versions["1"].pk})
    user_client.post(f"{MODEL_PAGE}aliases/", {"name": "STAGING", "version": versions["2"].pk})
    assert [(a.name, a.version) for a in Alias.objects.all()] == [("staging", versions["2"])]
    user_client.post(f"{MODEL_PAGE}aliases/Staging/delete/")
    assert not Alias.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(versions):
    response = Client().post(f"{MODEL_PAGE}aliases/", {"name": "staging", "version": versions["1"].pk})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not Alias.objects.exists()


def test_the_catalogue_filters_by_tag(user_client):
    RegisteredModel.objects.create(name="detector", tags={"team": "cv"})
    RegisteredModel.objects.create(name="tagger", tags={"team": "nlp"})
    html = user_client.get("/?tag=team:cv").content.decode()
    assert "detector" in html and "tagger" not in html


def test_the_admin_moves_an_alias_through_the_service(admin_client, versions):
    model = RegisteredModel.objects.get()
    response = admin_client.post(
        "/admin/models_app/alias/add/",
        {"registered_model": model.pk, "name": "staging", "version": versions["1"].pk, "reason": "from admin"},
    )
    assert response.status_code == 302, response.content
    alias = Alias.objects.get()
    response = admin_client.post(f"/admin/models_app/alias/{alias.pk}/change/", {"version": versions["2"].pk})
    assert response.status_code == 302, response.content
    assert Alias.objects.get().version == versions["2"]
    assert [e.action for e in AliasEvent.objects.order_by("id")] == ["set", "move"]
    assert [e.action for e in AuditEntry.objects.filter(object_type="alias").order_by("id")] == [
        "alias_set",
        "alias_move",
    ]
    page = admin_client.get(f"/admin/models_app/alias/{alias.pk}/change/").content.decode()
    assert "from admin" in page and "move" in page


@pytest.mark.parametrize("name", ["production", "Production"])
def test_the_admin_refuses_a_protected_alias_without_the_permission(versions, django_user_model, name):
    staff = grant(
        django_user_model.objects.create_user("staff", is_staff=True),
        "add_alias",
        "change_alias",
        "view_alias",
        "view_registeredmodel",
        "view_modelversion",
    )
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/models_app/alias/add/",
        {"registered_model": RegisteredModel.objects.get().pk, "name": name, "version": versions["1"].pk},
    )
    assert response.status_code == 200
    assert "Moving the protected alias production needs the promote_alias permission" in response.content.decode()
    assert not Alias.objects.exists()


def test_the_admin_stores_an_alias_name_in_its_one_lower_case_form(admin_client, versions):
    response = admin_client.post(
        "/admin/models_app/alias/add/",
        {"registered_model": RegisteredModel.objects.get().pk, "name": " Staging ", "version": versions["1"].pk},
    )
    assert response.status_code == 302, response.content
    assert Alias.objects.get().name == "staging"
    assert AliasEvent.objects.get().alias == "staging"


def test_the_admin_will_not_delete_a_version_an_alias_points_to(admin_client, api_client, versions):
    api_client.put("/api/v1/registered-models/person-detection/aliases/staging/", {"version": "1"}, format="json")
    url = f"/admin/models_app/modelversion/{versions['1'].pk}/delete/"
    page = admin_client.get(url)
    assert page.status_code == 200 and "protected" in page.content.decode()
    assert admin_client.post(url, {"post": "yes"}).status_code in (200, 403)
    assert ModelVersion.objects.filter(pk=versions["1"].pk).exists()
