"""Admin for curating models: columns that matter, filters, search, inlines and read-only checksums.

Deletes from the admin go through the same services as the API, so files leave with their rows.
"""

from django.contrib import admin
from django.utils.html import format_html

from . import services
from .models import Artifact, ModelVersion, RegisteredModel


def download_link(artifact):
    if not artifact.pk or not artifact.file:
        return "—"
    return format_html('<a href="{}">Download</a>', artifact.get_download_url())


class ServiceDeleteMixin:
    """Route single and bulk deletes through services so stored files are removed too."""

    delete_service = None

    def delete_model(self, request, obj):
        type(self).delete_service(obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            type(self).delete_service(obj)


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    fields = ["version", "status", "category", "architecture", "origin", "created_at"]
    readonly_fields = ["created_at"]
    show_change_link = True
    extra = 0


class ArtifactInline(admin.TabularInline):
    model = Artifact
    fields = ["precision", "target_device", "format", "score", "size", "sha256", "download"]
    readonly_fields = ["size", "sha256", "download"]
    show_change_link = True
    extra = 0
    can_delete = False  # deleting a file is done on the artifact's own page, through the service

    def has_add_permission(self, request, obj=None):
        return False  # a file is registered on the artifact page, where it is hashed and stored

    @admin.display(description="File")
    def download(self, obj):
        return download_link(obj)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = staticmethod(lambda obj: services.delete_registered_model(obj, force=True))
    list_display = ["name", "version_count", "latest_version_at", "created_at"]
    search_fields = ["name", "description"]
    list_filter = ["created_at"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ModelVersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_stats()

    @admin.display(ordering="version_count", description="Versions")
    def version_count(self, obj):
        return obj.version_count

    @admin.display(ordering="latest_version_at", description="Latest version")
    def latest_version_at(self, obj):
        return obj.latest_version_at


@admin.register(ModelVersion)
class ModelVersionAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = staticmethod(services.delete_version)
    list_display = ["__str__", "registered_model", "version", "status", "category", "architecture",
                    "origin", "created_by", "created_at"]
    list_select_related = ["registered_model", "created_by"]
    list_filter = ["status", "origin", "category", "created_at"]
    search_fields = ["version", "registered_model__name", "description", "architecture", "project_name"]
    autocomplete_fields = ["registered_model", "derived_from"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [ArtifactInline]


@admin.register(Artifact)
class ArtifactAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = staticmethod(services.delete_artifact)
    list_display = ["__str__", "model_name", "version_name", "precision", "target_device", "format",
                    "score", "size", "created_at", "download"]
    list_select_related = ["version", "version__registered_model"]
    list_filter = ["precision", "target_device", "format", "version__origin", "created_at"]
    search_fields = ["version__registered_model__name", "version__version", "sha256", "external_id"]
    readonly_fields = ["file", "size", "sha256", "original_filename", "content_type", "created_by",
                       "created_at", "updated_at", "download"]
    autocomplete_fields = ["version", "derived_from"]

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

    @admin.display(description="File")
    def download(self, obj):
        return download_link(obj)
