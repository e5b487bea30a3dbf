"""The admin's forms meet the rules every other writer meets: what the API refuses, the admin
refuses with a form error, and nothing changes."""

import pytest
from django.core.exceptions import ValidationError

from models_app import services
from models_app.admin import ModelVersionAdmin
from models_app.errors import Conflict
from models_app.models import Alias, AliasEvent, Artifact, AuditEntry, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


def form_data(response, **changes):
    """The POST an admin change page sends when saved as shown, with ``changes`` applied."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()
            if value is not None:
                data[form.add_prefix(name)] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    data.update(changes)
    return data


def save_change_form(client, obj, **changes):
    url = f"/admin/models_app/{obj._meta.model_name}/{obj.pk}/change/"
    return client.post(url, form_data(client.get(url), **changes))


@pytest.fixture
def aliased(model_version, admin_user):
    services.set_alias(registered_model=model_version.registered_model, name="production", version=model_version)
    return model_version


def test_the_version_form_refuses_to_archive_a_version_an_alias_points_at(admin_client, aliased):
    response = save_change_form(admin_client, aliased, status=ModelVersion.Status.ARCHIVED)
    assert response.status_code == 200
    assert "is the target of alias(es) production" in str(response.context["adminform"].form.errors)
    aliased.refresh_from_db()
    assert aliased.status == ModelVersion.Status.ACTIVE


def test_the_version_form_archives_a_version_no_alias_points_at_and_audits_it(admin_client, model_version):
    response = save_change_form(admin_client, model_version, status=ModelVersion.Status.ARCHIVED)
    assert response.status_code == 302
    model_version.refresh_from_db()
    assert model_version.status == ModelVersion.Status.ARCHIVED
    entry = AuditEntry.objects.get(action=AuditEntry.Action.UPDATE, object_id=str(model_version.pk))
    assert entry.changes == {"status": ["active", "archived"]}


def test_the_model_form_cannot_archive_versions_inline(admin_client, aliased):
    """The versions inline of a registered model shows them; edits go through the version's page."""
    response = save_change_form(admin_client, aliased.registered_model, **{"versions-0-status": "archived"})
    assert response.status_code == 302
    aliased.refresh_from_db()
    assert aliased.status == ModelVersion.Status.ACTIVE


def test_the_version_form_cannot_move_an_aliased_version_to_another_model(admin_client, aliased):
    other = RegisteredModel.objects.create(name="other")
    save_change_form(admin_client, aliased, registered_model=str(other.pk))
    aliased.refresh_from_db()
    assert aliased.registered_model.name == "person-detection"
    alias = Alias.objects.get()
    assert alias.version.registered_model_id == alias.registered_model_id


def test_the_artifact_form_refuses_to_move_a_file_into_an_archived_version(admin_client, artifact):
    archived = services.create_version(
        registered_model=artifact.version.registered_model, version="old", status=ModelVersion.Status.ARCHIVED
    )
    response = save_change_form(admin_client, artifact, version=str(archived.pk))
    assert response.status_code == 200
    assert "is archived; it takes no new artifacts" in str(response.context["adminform"].form.errors)
    assert Artifact.objects.get().version_id != archived.pk


def test_the_artifact_form_moves_a_file_to_another_version_and_audits_it(admin_client, artifact):
    target = services.create_version(registered_model=artifact.version.registered_model, version="2")
    response = save_change_form(admin_client, artifact, version=str(target.pk), score="0.5")
    assert response.status_code == 302
    artifact.refresh_from_db()
    assert (artifact.version_id, artifact.score) == (target.pk, 0.5)
    changes = {}
    for entry in AuditEntry.objects.filter(object_id=str(artifact.pk), action=AuditEntry.Action.UPDATE):
        changes.update(entry.changes)
    assert changes["version"][1] == str(target.pk) and changes["score"] == [None, 0.5]


def test_the_add_forms_create_through_the_services_with_an_audit_entry(admin_client):
    add = "/admin/models_app/registeredmodel/add/"
    assert admin_client.post(add, form_data(admin_client.get(add), name="det")).status_code == 302
    registered = RegisteredModel.objects.get(name="det")
    add = "/admin/models_app/modelversion/add/"
    response = admin_client.post(
        add, form_data(admin_client.get(add), registered_model=str(registered.pk), version="1")
    )
    assert response.status_code == 302
    version = ModelVersion.objects.get(registered_model=registered, version="1")
    created = AuditEntry.objects.filter(action=AuditEntry.Action.CREATE)
    assert sorted(created.values_list("object_id", flat=True)) == sorted([str(registered.pk), str(version.pk)])


@pytest.mark.parametrize("target", ["archived", "other model"])
def test_the_alias_form_and_the_service_refuse_the_same_targets(admin_client, aliased, target):
    if target == "archived":
        version = services.create_version(
            registered_model=aliased.registered_model, version="old", status=ModelVersion.Status.ARCHIVED
        )
    else:
        version = services.create_version(registered_model=RegisteredModel.objects.create(name="other"), version="1")
    alias = Alias.objects.get()
    response = save_change_form(admin_client, alias, version=str(version.pk))
    assert response.status_code == 200 and response.context["adminform"].form.errors
    with pytest.raises(Conflict if target == "archived" else ValidationError):
        services.set_alias(registered_model=aliased.registered_model, name="production", version=version)
    alias.refresh_from_db()
    assert alias.version_id == aliased.pk


def test_the_admin_refuses_to_delete_a_version_an_alias_points_at(admin_client, aliased):
    response = admin_client.post(f"/admin/models_app/modelversion/{aliased.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200
    assert "protected related objects" in response.content.decode()
    assert ModelVersion.objects.filter(pk=aliased.pk).exists()


# A concurrent write can break a rule between the form's check and the save: the service, which
# checks again under a row lock, refuses, and the admin says so instead of failing with a 500.


def test_a_version_aliased_after_the_form_check_is_not_archived_and_the_admin_says_why(
    admin_client, model_version, monkeypatch
):
    checked = ModelVersionAdmin.form_checks

    def then_aliased(self, instance, changed):
        checked(self, instance, changed)
        services.set_alias(registered_model=model_version.registered_model, name="staging", version=model_version)

    monkeypatch.setattr(ModelVersionAdmin, "form_checks", then_aliased)
    response = save_change_form(admin_client, model_version, status=ModelVersion.Status.ARCHIVED)

    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert "Nothing was saved" in page and "is the target of alias(es) staging" in page
    model_version.refresh_from_db()
    assert model_version.status == ModelVersion.Status.ACTIVE
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.UPDATE).exists()


def test_an_alias_target_archived_after_the_form_check_is_not_pointed_at_and_the_admin_says_why(
    admin_client, aliased, monkeypatch
):
    target = services.create_version(registered_model=aliased.registered_model, version="2")
    cleaned = Alias.clean

    def then_archived(self):
        cleaned(self)
        services.update_version(target, fields={"status": ModelVersion.Status.ARCHIVED})

    monkeypatch.setattr(Alias, "clean", then_archived)
    alias = Alias.objects.get()
    response = save_change_form(admin_client, alias, version=str(target.pk))

    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert "Nothing was saved" in page and "is archived; an alias cannot point to it" in page
    alias.refresh_from_db()
    assert alias.version_id == aliased.pk
    assert AliasEvent.objects.count() == 1  # the set of the fixture, no move
