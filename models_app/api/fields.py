"""Serializer fields for lists: the work that is the same for every row is done once per response."""

from urllib.parse import quote

from django.core.validators import ProhibitNullCharactersValidator
from django.urls import reverse
from django.utils.http import RFC3986_SUBDELIMS
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..lib import plans

PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
# What the URL resolver leaves unquoted in a path (RFC 3986 pchar), as reverse() does.
SAFE = RFC3986_SUBDELIMS + "/~:@"


@extend_schema_field(OpenApiTypes.URI)
class RouteLinkField(serializers.Field):
    """The absolute URL of a row's route (its detail, its download, ...).

    DRF's hyperlinked fields call ``reverse()`` for every row; on a page of 50 the URL resolver
    costs more than the rest of the row. This field reverses the route once per response, with a
    placeholder for the lookup value, keeps the result in the serializer context (shared by every
    row of a list) and fills in each row's value, quoted as ``reverse()`` quotes it.
    """

    def __init__(self, view_name, lookup_field="pk", lookup_url_kwarg=None, **kwargs):
        self.view_name, self.lookup_field = view_name, lookup_field
        self.lookup_url_kwarg = lookup_url_kwarg or lookup_field
        super().__init__(read_only=True, source="*", **kwargs)

    def template(self):
        key = f"_route_template:{self.view_name}"
        template = self.context.get(key)
        if template is None:
            url = reverse(self.view_name, kwargs={self.lookup_url_kwarg: PLACEHOLDER})
            request = self.context.get("request")
            url = request.build_absolute_uri(url) if request else url
            prefix, _, suffix = url.partition(PLACEHOLDER)
            template = self.context[key] = (prefix, suffix)
        return template

    def to_representation(self, instance):
        prefix, suffix = self.template()
        return f"{prefix}{quote(str(getattr(instance, self.lookup_field)), safe=SAFE)}{suffix}"


class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, asking for the current time zone once per field instead of once per
    value: the look-up goes through a context-local and cost more than formatting the value. A
    field belongs to one serializer, which serves one request, so the zone cannot change under it.
    """

    def default_timezone(self):
        try:
            return self._default_timezone
        except AttributeError:
            self._default_timezone = super().default_timezone()
            return self._default_timezone


class SlugRelatedField(serializers.SlugRelatedField):
    """DRF's SlugRelatedField, its look-up compiled once (models_app/lib/plans.py): every
    version created names its registered model, and the ORM compiled the same query for each.
    What the prepared look-up does not find, or finds more than once, goes to DRF's own, whose
    errors stand."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            ProhibitNullCharactersValidator()(data)  # as DRF's CharField: PostgreSQL cannot compare it
            queryset = self.get_queryset()
            key = (type(self), type(self.parent), self.field_name)
            found = plans.instances(
                key, lambda values: queryset.filter(**{self.slug_field: values["slug"]}), {"slug": data}, 2
            )
            if found is not None and len(found) == 1:
                return found[0]
        return super().to_internal_value(data)
