"""Admin for curating models: columns that matter, filters, search, inlines and read-only checksums.

Deletes from the admin go through the same services as the API, so files leave with their rows.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, OuterRef, Subquery, Sum
from django.http import HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from . import services
from .errors import ArtifactStorageError, RegistryError
from .models import Alias, AliasEvent, Artifact, AuditEntry, ModelVersion, RegisteredModel, normalize_alias_name
from .storage import check_storage


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, one key a line, in a monospace box sized to its content."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, cls=self.encoder)


class JSONTextarea(forms.Textarea):
    def __init__(self, attrs=None):
        super().__init__(attrs={"class": "vLargeTextField json-field", "rows": 4, **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        lines = (value or "").count("\n") + 1
        context["widget"]["attrs"]["rows"] = min(max(lines, 2), 20)
        return context


class RegistryAdminMixin:
    """Display options every registry admin shares: readable JSON, precisions as written (FP16,
    not "Fp16"), dates to the minute."""

    formfield_overrides = {models.JSONField: {"form_class": PrettyJSONField, "widget": JSONTextarea}}

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(ordering="created_at", description="Created")
    def created(self, obj):
        return short_time(obj.created_at)

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "precision":
            kwargs["choices"] = [(value, value) for value in Artifact.Precision.values]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


class PrecisionFilter(admin.SimpleListFilter):
    title = "precision"
    parameter_name = "precision__exact"

    def lookups(self, request, model_admin):
        return [(value, value) for value in Artifact.Precision.values]

    def queryset(self, request, queryset):
        return queryset.filter(precision=self.value()) if self.value() else queryset


def short_time(value):
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def download_link(artifact):
    if not artifact.pk or not artifact.file:
        return "—"
    return format_html('<a href="{}">Download</a>', artifact.get_download_url())


class RefusedSaveMixin:
    """A rule the form checked can still break before the save (another request archives the
    version, or points an alias at it, in between). The service checks again under a row lock and
    refuses; the admin then saves nothing and says why on the form's page, rather than a 500."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RegistryError as exc:
            self.message_user(request, f"Nothing was saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ServiceSaveMixin(RefusedSaveMixin):
    """Admin edits are writes like any other: they are saved through the same services as the API's,
    which lock, validate and audit them. ``form_checks`` runs the services' rules on the form first,
    so a refusal shows as a form error and nothing is saved."""

    create_service = None  # (fields, user) -> the new row
    update_service = None  # (stored row, changed fields, user) -> the row

    def form_checks(self, instance, changed):
        """Raise RegistryError when the service would refuse these changes to ``instance``."""

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        admin_ = self

        class ServiceCheckedForm(form):
            def _post_clean(self):
                super()._post_clean()
                if self.errors:
                    return
                try:
                    admin_.form_checks(self.instance, changed_fields(self.instance, self))
                except RegistryError as exc:
                    self.add_error(None, str(exc))

        return ServiceCheckedForm

    def save_model(self, request, obj, form, change):
        fields = changed_fields(obj, form)
        if change:
            type(self).update_service(type(obj).objects.get(pk=obj.pk), fields, request.user)
        else:
            obj.pk = type(self).create_service(fields, request.user).pk


def changed_fields(obj, form):
    """The model fields the form changed, with their new values."""
    names = {field.name for field in obj._meta.concrete_fields}
    return {name: getattr(obj, name) for name in form.changed_data if name in names}


@admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s and their files")
def delete_selected_with_files(modeladmin, request, queryset):
    """Django's bulk delete, with the confirmation page saying how many files and bytes go, and
    nothing deleted when the storage is down (rather than rows gone and files stranded)."""
    if request.POST.get("post"):
        try:
            check_storage()
        except ArtifactStorageError as exc:
            modeladmin.message_user(request, f"Nothing was deleted: {exc.message}", messages.ERROR)
            return None
    response = delete_selected(modeladmin, request, queryset)
    if isinstance(response, TemplateResponse):
        response.context_data["file_totals"] = modeladmin.file_totals(queryset)
    return response


class ServiceDeleteMixin(ServiceSaveMixin):
    """Route single and bulk deletes through services so stored files are removed too, and say
    on the confirmation pages how many files and bytes will be deleted."""

    delete_service = None
    # Lookup from an Artifact to the rows this admin lists ("" for artifacts themselves).
    artifact_path = ""

    def delete_model(self, request, obj):
        type(self).delete_service(obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            type(self).delete_service(obj, user=request.user)

    def file_totals(self, queryset):
        """Files and bytes stored for these rows (one aggregate query)."""
        lookup = f"{self.artifact_path}__in" if self.artifact_path else "pk__in"
        totals = Artifact.objects.filter(**{lookup: queryset.values("pk")}).aggregate(
            count=Count("pk"), size=Sum("size")
        )
        return {"count": totals["count"], "size": totals["size"] or 0}

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            actions["delete_selected"] = (
                delete_selected_with_files,
                "delete_selected",
                delete_selected_with_files.short_description,
            )
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        queryset = self.get_queryset(request).filter(pk=object_id)
        extra_context = {**(extra_context or {}), "file_totals": self.file_totals(queryset)}
        return super().delete_view(request, object_id, extra_context)


class ModelVersionInline(admin.TabularInline):
    """The model's versions, read-only: a version is changed on its own page, through the service
    (an inline save would skip its rules, its audit entry, and on delete its files)."""

    model = ModelVersion
    fields = ["version", "status", "category", "architecture", "origin", "created_at"]
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ArtifactInline(RegistryAdminMixin, admin.TabularInline):
    model = Artifact
    fields = ["precision_text", "target_device", "format", "score", "file_size", "short_sha256", "download"]
    # Read-only: an artifact is changed or deleted on its own page, through the services (with
    # their checks, audit entry and file delete).
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # a file is registered on the artifact page, where it is hashed and stored

    @admin.display(description="File")
    def download(self, obj):
        return download_link(obj)

    @admin.display(description="Precision")
    def precision_text(self, obj):
        return obj.precision  # as written (FP16), not the choice's label ("Fp16")

    @admin.display(description="Size")
    def file_size(self, obj):
        return filesizeformat(obj.size) if obj.pk else "—"

    @admin.display(description="sha256")
    def short_sha256(self, obj):
        return format_html('<code title="{}">{}…</code>', obj.sha256, obj.sha256[:12]) if obj.pk else "—"


@admin.register(RegisteredModel)
class RegisteredModelAdmin(RegistryAdminMixin, ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = staticmethod(lambda obj, user: services.delete_registered_model(obj, force=True, user=user))
    create_service = staticmethod(lambda fields, user: services.create_registered_model(user=user, **fields))
    update_service = staticmethod(
        lambda obj, fields, user: services.update_registered_model(obj, fields=fields, user=user)
    )
    artifact_path = "version__registered_model"
    list_display = ["name", "version_count", "latest_version", "latest_version_at", "created"]
    search_fields = ["name", "description"]
    list_filter = ["created_at"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ModelVersionInline]

    def get_queryset(self, request):
        newest = ModelVersion.objects.filter(registered_model=OuterRef("pk")).order_by("-created_at", "-pk")
        return (
            super().get_queryset(request).with_stats().annotate(latest_version=Subquery(newest.values("version")[:1]))
        )

    @admin.display(ordering="version_count", description="Versions")
    def version_count(self, obj):
        return obj.version_count

    @admin.display(ordering="latest_version", description="Latest version")
    def latest_version(self, obj):
        return obj.latest_version or "—"

    @admin.display(ordering="latest_version_at", description="Updated")
    def latest_version_at(self, obj):
        return short_time(obj.latest_version_at)


@admin.register(ModelVersion)
class ModelVersionAdmin(RegistryAdminMixin, ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = staticmethod(services.delete_version)
    create_service = staticmethod(lambda fields, user: services.create_version(user=user, **fields))
    update_service = staticmethod(lambda obj, fields, user: services.update_version(obj, fields=fields, user=user))
    artifact_path = "version"
    list_display = [
        "registered_model",
        "version",
        "status",
        "category",
        "variant_count",
        "total_size",
        "best_score",
        "created",
    ]
    list_display_links = ["registered_model", "version"]
    list_select_related = ["registered_model"]
    list_filter = ["status", "origin", "category", "created_at"]
    search_fields = ["version", "registered_model__name", "description", "architecture", "project_name"]
    autocomplete_fields = ["registered_model", "derived_from"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [ArtifactInline]
    actions = ["mark_active", "mark_deprecated", "mark_archived"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_totals().with_best_score()

    def get_readonly_fields(self, request, obj=None):
        # A version stays with its registered model, as in the API (its aliases point at it there).
        return [*self.readonly_fields, "registered_model"] if obj else self.readonly_fields

    def form_checks(self, instance, changed):
        if changed.get("status") == ModelVersion.Status.ARCHIVED:
            instance.check_archivable()

    @admin.display(ordering="artifact_count", description="Variants")
    def variant_count(self, obj):
        return obj.artifact_count

    @admin.display(ordering="total_size", description="Size")
    def total_size(self, obj):
        return filesizeformat(obj.total_size) if obj.total_size is not None else "—"

    @admin.display(ordering="best_score", description="Best score")
    def best_score(self, obj):
        return obj.best_score

    def _set_status(self, request, queryset, status):
        # One service call per version, so each change is validated and audited like an API one.
        changed = 0
        for version in queryset.select_related("registered_model"):
            if version.status == status:
                continue
            try:
                services.update_version(version, fields={"status": status}, user=request.user)
            except RegistryError as exc:  # e.g. archiving a version an alias points to
                self.message_user(request, exc.message, messages.ERROR)
            else:
                changed += 1
        self.message_user(request, f"{changed} version(s) marked {status}.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Mark selected versions active")
    def mark_active(self, request, queryset):
        self._set_status(request, queryset, ModelVersion.Status.ACTIVE)

    @admin.action(permissions=["change"], description="Mark selected versions deprecated")
    def mark_deprecated(self, request, queryset):
        self._set_status(request, queryset, ModelVersion.Status.DEPRECATED)

    @admin.action(permissions=["change"], description="Archive selected versions (they take no new files)")
    def mark_archived(self, request, queryset):
        self._set_status(request, queryset, ModelVersion.Status.ARCHIVED)


@admin.register(Artifact)
class ArtifactAdmin(RegistryAdminMixin, ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = staticmethod(services.delete_artifact)

    @staticmethod
    def update_service(artifact, fields, user):
        # Moved to another version (the admin's version field) through the service that checks the
        # target and audits the move, like an Intel PUT that renames.
        target = fields.pop("version", artifact.version)
        return services.change_artifact(
            artifact,
            model_name=target.registered_model.name,
            version=target.version,
            artifact_fields=fields,
            user=user,
        )

    list_display = [
        "model_name",
        "version_name",
        "precision_name",
        "target_device",
        "format",
        "score",
        "file_size",
        "created",
        "download",
    ]
    list_display_links = ["model_name", "version_name"]
    date_hierarchy = "created_at"
    list_select_related = ["version", "version__registered_model"]
    list_filter = [PrecisionFilter, "target_device", "format", "version__origin", "created_at"]
    search_fields = ["version__registered_model__name", "version__version", "sha256", "external_id"]
    readonly_fields = [
        "file",
        "size",
        "sha256",
        "original_filename",
        "content_type",
        "created_by",
        "created_at",
        "updated_at",
        "download",
        "file_inspection",
    ]
    autocomplete_fields = ["version", "derived_from"]

    def form_checks(self, instance, changed):
        if "version" in changed:
            instance.version.check_takes_artifacts()

    def has_add_permission(self, request):
        # New files are registered through the API or the upload page, where they are streamed,
        # hashed and stored with the no-orphan guarantees.
        return False

    @admin.display(ordering="version__registered_model__name", description="Model")
    def model_name(self, obj):
        return obj.version.registered_model.name

    @admin.display(ordering="version__version", description="Version")
    def version_name(self, obj):
        return obj.version.version

    @admin.display(ordering="size", description="Size")
    def file_size(self, obj):
        return filesizeformat(obj.size)

    @admin.display(ordering="precision", description="Precision")
    def precision_name(self, obj):
        return obj.precision

    @admin.display(description="File")
    def download(self, obj):
        return download_link(obj)

    @admin.display(description="Inspection")
    def file_inspection(self, obj):
        """What the file holds (docs/inspection.md), with any contradiction of the declared fields."""
        found = obj.inspection_or_none if obj.pk else None
        if found is None:
            return "pending"
        text = found.status + (f": {found.reason}" if found.reason else "")
        if found.status == found.Status.DONE:
            text += f" ({found.format}, weights {found.weight_precision or '?'}, {found.parameter_count} parameters)"
        return format_html_join("", "<div>{}</div>", [(line,) for line in [text, *obj.inspection_warnings]])


# --- Lifecycle: aliases and the audit log ----------------------------------------------------


class AliasAdminForm(forms.ModelForm):
    """Checks the protected-alias permission in the form, so a refusal is a form error."""

    user = None  # set per request by AliasAdmin.get_form
    reason = forms.CharField(required=False, max_length=2000, help_text="Kept in the alias's history.")

    class Meta:
        model = Alias
        fields = ["registered_model", "name", "version"]

    def clean(self):
        data = super().clean()
        name = self.instance.name if self.instance.pk else normalize_alias_name(data.get("name"))
        if name and not self.user.has_perm(Alias.permission_for(name)):
            raise ValidationError(f"Moving the protected alias {name} needs the promote_alias permission.")
        return data


@admin.register(Alias)
class AliasAdmin(RefusedSaveMixin, admin.ModelAdmin):
    """Aliases, moved through the same service as the API so the history and audit are kept.

    The history (every set, move, rollback and delete, newest first) is shown read-only.
    """

    form = AliasAdminForm
    list_display = ["__str__", "registered_model", "name", "version", "updated_by", "updated_at"]
    list_select_related = ["registered_model", "version", "updated_by"]
    search_fields = ["name", "registered_model__name"]
    list_filter = ["name"]
    autocomplete_fields = ["registered_model", "version"]
    fields = ["registered_model", "name", "version", "reason", "updated_by", "updated_at", "history"]
    readonly_fields = ["updated_by", "updated_at", "history"]

    def get_form(self, request, obj=None, **kwargs):
        return type("AliasAdminForm", (super().get_form(request, obj, **kwargs),), {"user": request.user})

    def get_readonly_fields(self, request, obj=None):
        # An alias's model and name are fixed once it exists; only its target moves.
        return [*self.readonly_fields, "registered_model", "name"] if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None:
            return request.user.has_perm(Alias.permission_for(obj.name))
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        alias, _ = services.set_alias(
            registered_model=obj.registered_model,
            name=obj.name,
            version=obj.version,
            user=request.user,
            reason=form.cleaned_data.get("reason", ""),
        )
        obj.pk = alias.pk

    def delete_model(self, request, obj):
        services.delete_alias(registered_model=obj.registered_model, name=obj.name, user=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("registered_model"):
            if request.user.has_perm(Alias.permission_for(obj.name)):
                services.delete_alias(registered_model=obj.registered_model, name=obj.name, user=request.user)

    @admin.display(description="History")
    def history(self, obj):
        if not obj.pk:
            return "—"
        events = (
            AliasEvent.objects.filter(registered_model=obj.registered_model, alias=obj.name)
            .select_related("user")
            .order_by("-at", "-id")[:100]
        )
        return (
            format_html_join(
                "",
                "<div>{} · {} · {} → {} · {} {}</div>",
                (
                    (
                        e.at.strftime("%Y-%m-%d %H:%M:%S"),
                        e.action,
                        e.from_version_label or "—",
                        e.to_version_label or "—",
                        e.user or "—",
                        f"({e.reason})" if e.reason else "",
                    )
                    for e in events
                ),
            )
            or "—"
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log, read-only: nobody adds, changes or deletes an entry here."""

    list_display = ["at", "actor_name", "action", "object_type", "object_repr", "registered_model"]
    list_filter = ["action", "object_type", "at"]
    search_fields = ["object_repr", "object_id", "actor_name", "registered_model"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
