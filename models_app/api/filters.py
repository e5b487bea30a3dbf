"""Filters for every metadata field of the list endpoints."""

import django_filters as filters
from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from ..models import Artifact, AuditEntry, ModelVersion, RegisteredModel


def json_key_text(key, field):
    """The text value of one top-level key of a JSON column.

    The key goes in as a value (KeyTextTransform), never into a lookup path, so a key such as
    ``a__contains`` cannot turn into another lookup; the Cast makes it a plain text comparison on
    every backend.
    """
    return Cast(KeyTextTransform(key, field), output_field=TextField())


def filter_tag(queryset, name, value, prefix="", field="tags"):
    """``tag=key`` (has the key) or ``tag=key:value`` (exact value); repeat to AND several.

    Also used for provenance (``provenance=dataset:coco-2017``) with ``field="provenance"``.
    """
    for index, item in enumerate(value if isinstance(value, list) else [value]):
        key, sep, val = item.partition(":")
        if sep:
            alias = f"_{field}_{index}"
            queryset = queryset.alias(**{alias: json_key_text(key, f"{prefix}{field}")}).filter(**{alias: val})
        else:
            queryset = queryset.filter(**{f"{prefix}{field}__has_key": key})
    return queryset


class HidesArchivedFilterSet(filters.FilterSet):
    """Lists leave archived versions (and their artifacts) out unless the client asks for them
    with ``status=archived`` or ``include_archived=true``; archiving deletes nothing."""

    status_field = "status"
    include_archived = filters.BooleanFilter(method="keep_all", help_text="Also list archived versions.")

    def keep_all(self, queryset, name, value):
        return queryset

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        if not data.get("status") and not data.get("include_archived"):
            queryset = queryset.exclude(**{self.status_field: ModelVersion.Status.ARCHIVED})
        return queryset


class RegisteredModelFilterSet(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    tag = filters.CharFilter(method="by_tag", help_text="key or key:value")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = RegisteredModel
        fields = ["name"]

    def by_tag(self, queryset, name, value):
        return filter_tag(queryset, name, value)


def version_filters(prefix):
    """Version-level metadata filters; artifacts reach them through ``version__``.

    Used as ``locals().update(version_filters(...))`` in a FilterSet body so both FilterSets
    declare the same filters under the same names.
    """
    return {
        "registered_model": filters.CharFilter(field_name=f"{prefix}registered_model__name", lookup_expr="iexact"),
        "architecture": filters.CharFilter(field_name=f"{prefix}architecture", lookup_expr="icontains"),
        "category": filters.CharFilter(field_name=f"{prefix}category", lookup_expr="iexact"),
        "origin": filters.CharFilter(field_name=f"{prefix}origin", lookup_expr="iexact"),
        "project_id": filters.CharFilter(field_name=f"{prefix}project_id"),
        "project_name": filters.CharFilter(field_name=f"{prefix}project_name", lookup_expr="icontains"),
        "label": filters.CharFilter(field_name=f"{prefix}labels", lookup_expr="icontains"),
        "status": filters.CharFilter(field_name=f"{prefix}status", lookup_expr="iexact"),
    }


class ModelVersionFilterSet(HidesArchivedFilterSet):
    locals().update(version_filters(""))
    version = filters.CharFilter(field_name="version")
    tag = filters.CharFilter(method="by_tag", help_text="key or key:value")
    created_by = filters.CharFilter(field_name="created_by__username")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    derived_from = filters.UUIDFilter(field_name="derived_from")
    provenance = filters.CharFilter(method="by_provenance", help_text="key or key:value")

    class Meta:
        model = ModelVersion
        fields = []

    def by_tag(self, queryset, name, value):
        return filter_tag(queryset, name, value)

    def by_provenance(self, queryset, name, value):
        return filter_tag(queryset, name, value, field="provenance")


class ArtifactFilterSet(HidesArchivedFilterSet):
    status_field = "version__status"
    locals().update(version_filters("version__"))
    version = filters.CharFilter(field_name="version__version")
    version_id = filters.UUIDFilter(field_name="version_id")
    precision = filters.CharFilter(lookup_expr="iexact")
    target_device = filters.CharFilter(lookup_expr="iexact")
    target_device_type = filters.CharFilter(lookup_expr="iexact")
    format = filters.CharFilter(lookup_expr="iexact")
    score_min = filters.NumberFilter(field_name="score", lookup_expr="gte")
    score_max = filters.NumberFilter(field_name="score", lookup_expr="lte")
    size_min = filters.NumberFilter(field_name="size", lookup_expr="gte")
    size_max = filters.NumberFilter(field_name="size", lookup_expr="lte")
    sha256 = filters.CharFilter(lookup_expr="iexact")
    external_id = filters.CharFilter()
    tag = filters.CharFilter(method="by_tag", help_text="version tag: key or key:value")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    derived_from = filters.UUIDFilter(field_name="derived_from")
    provenance = filters.CharFilter(method="by_provenance", help_text="version provenance: key or key:value")

    class Meta:
        model = Artifact
        fields = []

    def by_tag(self, queryset, name, value):
        return filter_tag(queryset, name, value, prefix="version__")

    def by_provenance(self, queryset, name, value):
        return filter_tag(queryset, name, value, prefix="version__", field="provenance")


class AuditEntryFilterSet(filters.FilterSet):
    object_type = filters.CharFilter(lookup_expr="iexact")
    object_id = filters.CharFilter()
    registered_model = filters.CharFilter(lookup_expr="iexact")
    actor = filters.CharFilter(field_name="actor_name")
    action = filters.CharFilter()
    since = filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = []
