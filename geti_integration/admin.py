"""Import jobs in the admin: read-only (jobs are started from /geti/ or the API), with a link to
the Geti page from the list."""

from django.contrib import admin
from django.utils.html import format_html

from .models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    change_list_template = "admin/geti_integration/importjob/change_list.html"
    list_display = [
        "name_or_id",
        "project_name",
        "state",
        "progress_display",
        "artifact_link",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["state", "project_name"]
    search_fields = ["name", "optimized_model_id", "project_name", "project_id"]
    list_select_related = ["created_by", "artifact__version__registered_model"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    @admin.display(description="Model", ordering="name")
    def name_or_id(self, job):
        return job.name or job.optimized_model_id

    @admin.display(description="Progress")
    def progress_display(self, job):
        return "—" if job.progress is None else f"{job.progress:.0f}%"

    @admin.display(description="Artifact")
    def artifact_link(self, job):
        if job.artifact is None:
            return "—"
        return format_html('<a href="{}">{}</a>', job.artifact.version.get_absolute_url(), job.artifact)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
