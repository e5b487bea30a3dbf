"""Filters for every metadata field of the list endpoints."""

import datetime

import django_filters as filters
from django.db.models import Exists, OuterRef
from rest_framework.filters import OrderingFilter as DRFOrderingFilter
from rest_framework.filters import SearchFilter as DRFSearchFilter

from ..lib.queries import json_key_text
from ..models import Artifact, ArtifactInspection, AuditEntry, ModelVersion, RegisteredModel


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 date-time, compared in UTC: Python accepts offsets up to a day, PostgreSQL only
    up to sixteen hours, and passing ``+21:09`` through made the query fail in the driver."""

    def filter(self, qs, value):
        return super().filter(qs, value.astimezone(datetime.UTC) if value else value)


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


class FilterSet(filters.FilterSet):
    """A FilterSet that builds only the filters a request names.

    django-filter deep-copies every declared filter and builds a form field for each on every
    request, while a request uses two or three of the artifact list's thirty (bench/README.md has
    the cost). The class keeps all of them (the OpenAPI schema lists them).
    """

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and not kwargs.get("prefix"):
            self.base_filters = {name: f for name, f in self.base_filters.items() if name in data}
        super().__init__(data, *args, **kwargs)


class HidesArchivedFilterSet(FilterSet):
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


class RegisteredModelFilterSet(FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    tag = filters.CharFilter(method="by_tag", help_text="key or key:value")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

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
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    derived_from = filters.UUIDFilter(field_name="derived_from")
    provenance = filters.CharFilter(method="by_provenance", help_text="key or key:value")

    class Meta:
        model = ModelVersion
        fields = []

    def by_tag(self, queryset, name, value):
        return filter_tag(queryset, name, value)

    def by_provenance(self, queryset, name, value):
        return filter_tag(queryset, name, value, field="provenance")


class NormalizedCharFilter(filters.CharFilter):
    """Exact match on a column the model stores normalised (precision and target device upper
    case, format lower case), after normalising the value the same way: as case-insensitive as
    ``iexact``, but the column's plain index serves it, up to index-only counts."""

    def filter(self, qs, value):
        return super().filter(qs, Artifact.normalize_variant_part(self.field_name, value) if value else value)


class ArtifactFilterSet(HidesArchivedFilterSet):
    def filter_queryset(self, queryset):
        """As HidesArchivedFilterSet, but archived versions are left out with ``NOT EXISTS`` (an
        anti-join with the few archived versions) rather than a join with every version: counts
        and pages stay on the artifact indexes (``artifact_variant_key`` includes ``version_id``),
        and the planner still estimates the result well for ``X-Count-Estimated`` counts."""
        data = self.form.cleaned_data
        queryset = super(HidesArchivedFilterSet, self).filter_queryset(queryset)
        if not data.get("status") and not data.get("include_archived"):
            archived = ModelVersion.objects.filter(pk=OuterRef("version_id"), status=ModelVersion.Status.ARCHIVED)
            queryset = queryset.filter(~Exists(archived))
        return queryset

    locals().update(version_filters("version__"))
    version = filters.CharFilter(field_name="version__version")
    version_id = filters.UUIDFilter(field_name="version_id")
    precision = NormalizedCharFilter()
    target_device = NormalizedCharFilter()
    target_device_type = filters.CharFilter(lookup_expr="iexact")
    format = NormalizedCharFilter()
    score_min = filters.NumberFilter(field_name="score", lookup_expr="gte")
    score_max = filters.NumberFilter(field_name="score", lookup_expr="lte")
    size_min = filters.NumberFilter(field_name="size", lookup_expr="gte")
    size_max = filters.NumberFilter(field_name="size", lookup_expr="lte")
    sha256 = filters.CharFilter(lookup_expr="iexact")
    external_id = filters.CharFilter()
    tag = filters.CharFilter(method="by_tag", help_text="version tag: key or key:value")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    derived_from = filters.UUIDFilter(field_name="derived_from")
    provenance = filters.CharFilter(method="by_provenance", help_text="version provenance: key or key:value")
    # What the file's inspection found (docs/inspection.md).
    inspection_status = filters.ChoiceFilter(
        choices=ArtifactInspection.Status.choices,
        method="by_inspection_status",
        help_text="pending includes never inspected",
    )
    inspected_format = filters.CharFilter(
        field_name="inspection__format", lookup_expr="iexact", help_text="openvino, onnx or pickle"
    )
    weight_precision = filters.CharFilter(
        field_name="inspection__weight_precision", lookup_expr="iexact", help_text="as found in the file"
    )
    ir_version = filters.NumberFilter(field_name="inspection__ir_version")
    opset = filters.NumberFilter(field_name="inspection__opset")
    input_shape = filters.CharFilter(
        field_name="inspection__input_shapes",
        lookup_expr="icontains",
        help_text="part of an input shape, e.g. 224x224 or 3x640x640",
    )
    parameters_min = filters.NumberFilter(field_name="inspection__parameter_count", lookup_expr="gte")
    parameters_max = filters.NumberFilter(field_name="inspection__parameter_count", lookup_expr="lte")

    class Meta:
        model = Artifact
        fields = []

    def by_tag(self, queryset, name, value):
        return filter_tag(queryset, name, value, prefix="version__")

    def by_provenance(self, queryset, name, value):
        return filter_tag(queryset, name, value, prefix="version__", field="provenance")

    def by_inspection_status(self, queryset, name, value):
        return queryset.inspection_status(value)


class AuditEntryFilterSet(FilterSet):
    object_type = filters.CharFilter(lookup_expr="iexact")
    object_id = filters.CharFilter()
    registered_model = filters.CharFilter(lookup_expr="iexact")
    actor = filters.CharFilter(field_name="actor_name")
    action = filters.CharFilter()
    since = UtcDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = []


def search_ids(model, fields, term):
    """The pks of ``model`` rows matching ``term`` in any of ``fields``, as a subquery that is a
    UNION of one query per column (``icontains``) and, for fields across a foreign key, one
    ``fk IN (<the same, one level down>)`` per relation.

    DRF's SearchFilter ORs conditions on joined tables, which PostgreSQL can only evaluate row by
    row over the whole join. Each branch here is one condition on one table, so it can use that
    column's trigram index (migration 0003) or the foreign key's index.
    """
    own, related = [], {}
    for field in fields:
        head, sep, rest = field.partition("__")
        target = model._meta.get_field(head) if sep else None
        if target is not None and target.many_to_one:
            related.setdefault(head, []).append(rest)
        else:
            own.append(field)
    manager = model._default_manager
    # One branch per column too: PostgreSQL's planner underrates an OR of trigram bitmap scans
    # against a sequential scan that evaluates UPPER(...) LIKE on every row.
    branches = [manager.filter(**{f"{field}__icontains": term}).order_by().values("pk") for field in own]
    for head, rest in related.items():
        target = model._meta.get_field(head).related_model
        branches.append(manager.filter(**{f"{head}__in": search_ids(target, rest, term)}).order_by().values("pk"))
    return branches[0].union(*branches[1:]) if len(branches) > 1 else branches[0]


class SearchFilter(DRFSearchFilter):
    """``?search=``: every term must match one of the view's ``search_fields`` (as in DRF), with
    the conditions grouped per table by ``search_ids`` so they can use indexes."""

    def filter_queryset(self, request, queryset, view):
        fields, terms = self.get_search_fields(view, request), self.get_search_terms(request)
        if not fields or not terms:
            return queryset
        for term in terms:
            queryset = queryset.filter(pk__in=search_ids(queryset.model, fields, term))
        return queryset


class OrderingFilter(DRFOrderingFilter):
    """DRF's ``?ordering=``, with the primary key added as the last key, in the direction of the
    key before it.

    Pages are cut with OFFSET, which is stable only when the order is total: many artifacts
    share a score, a size or a precision, and PostgreSQL may return tied rows in another order
    for each page, so a row could appear on two pages and another on none. The artifact sort
    indexes end with the id (``artifact_<key>_cover``), so the ids of a page still come from one
    index scan.
    """

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering or not all(isinstance(key, str) for key in ordering):
            return ordering
        if any(key.lstrip("-") in ("pk", "id") for key in ordering):
            return ordering
        return [*ordering, "-pk" if ordering[-1].startswith("-") else "pk"]
