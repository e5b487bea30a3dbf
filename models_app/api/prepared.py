"""Prepared lists: the first page of a list, with its SQL compiled once per kind of request.

A list request spends most of its time in Python, not in the database: the ORM compiles the
same query again for every request (resolving each column, join and subquery), then the
serializer walks every field of every row through its generic machinery. Clients mostly repeat a
few kinds of request (a model's versions, with a tag; a page of models whose name contains a
string), differing only in their values.

For such a request, the view's own filters, ordering and page size build the query once, from two
sets of sample values; comparing the two compiled queries shows which SQL parameters carry which
request value. Later requests of the same kind run that SQL with their own values, and turn its
rows into JSON with the serializer's own fields. The filters, the read rule and the
representation stay where they are written: nothing here knows what a filter means, so a kind of
request whose values do not reach the SQL unchanged (or as ``LIKE`` patterns) is never prepared
and takes the general path, as does every request with a parameter the view does not list.
Compiling from sample values, and keeping the plans, is models_app/lib/plans.py.
"""

import copy
from types import SimpleNamespace
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldError
from django.db import connections
from django.http import Http404, HttpRequest, QueryDict
from django.urls import reverse
from rest_framework import ISO_8601, serializers
from rest_framework.permissions import BasePermission
from rest_framework.relations import PrimaryKeyRelatedField, SlugRelatedField, StringRelatedField
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import replace_query_param

from .. import reads
from ..lib.plans import MAX_PLANS, Converter, Statement, respond, sample, select_order, statement_of
from ..lib.queries import run_planned
from ..models import normalize_alias_name
from .fields import PLACEHOLDER, SAFE, RouteLinkField
from .pagination import CheapCountPaginator, counted_rows
from .serializers import ArtifactSerializer, ResolveQuerySerializer, resolve_answer

# A parameter given more often than this takes the general path (see MAX_PLANS).
MAX_REPEATS = 3


def first_page(view, request):
    """The paginated response for ``request`` from a prepared query, or None when the request
    is not of a kind ``view.prepared_params`` covers (the caller then takes the general path)."""
    if not settings.REGISTRY_PREPARED_LISTS:
        return None
    kind = request_kind(view, request)
    if kind is None:
        return None
    # The count limit is part of the compiled count (a setting a test may change).
    key = (type(view), kind, settings.REGISTRY_EXACT_COUNT_LIMIT)
    return respond(key, lambda: Plan.build(view, request, kind), view, request)


def one(view, request):
    """The response for one object looked up by the view's URL arguments (``view.lookup_queryset``
    with them) from a prepared query, or None where the general path must answer: the view's
    permissions look at the object itself."""
    if not settings.REGISTRY_PREPARED_LISTS or not object_permissions_are_open(view):
        return None
    kind = tuple(sorted(view.kwargs))
    return respond((type(view), kind), lambda: ObjectPlan.build(view, request, kind), view, request)


def resolve(view, request):
    """``resolve``'s answer (the best variant of a version, named by its label or an alias, for a
    device) from one prepared query of the version's variants, ranked by reads.pick_variant; None
    where the general path must answer: constraints it refuses, and a model, version or alias
    that does not exist or a version without variants, whose errors are written there."""
    if not settings.REGISTRY_PREPARED_LISTS or not object_permissions_are_open(view):
        return None
    constraints = resolve_constraints(request.query_params)
    if constraints is None:
        return None
    if ("alias" in constraints) == ("version" in constraints):
        return None
    by = "alias" if "alias" in constraints else "version"
    build = lambda: ResolvePlan.build(view, by)  # noqa: E731
    return respond((type(view), "resolve", by), build, view, request, constraints)


_constraints = {}


def resolve_constraints(params):
    """ResolveQuerySerializer's constraints from ``params``, or None where it refuses them.
    Devices ask with the same few sets of parameters over and over, and validating them cost
    more than the query they lead to: each set's outcome is kept (at most MAX_PLANS of them)."""
    key = tuple((name, tuple(params.getlist(name))) for name in params)
    if key not in _constraints:
        query = ResolveQuerySerializer(data=params)
        outcome = query.constraints() if query.is_valid() else None
        if len(_constraints) >= MAX_PLANS:
            _constraints.clear()
        _constraints[key] = outcome
    outcome = _constraints[key]
    return None if outcome is None else {**outcome, "precisions": list(outcome["precisions"])}


def object_permissions_are_open(view):
    """True when no permission class of ``view`` looks at the object it is asked to show."""
    return all(
        type(permission).has_object_permission is BasePermission.has_object_permission
        for permission in view.get_permissions()
    )


def request_kind(view, request):
    """What the SQL depends on besides the values: each parameter's name and how many times it
    is given, the ordering and the page size; None if the request is not one to prepare."""
    params = request.query_params
    orderings = {f"{sign}{name}" for name in view.ordering_fields for sign in ("", "-")}
    kind = []
    for name in sorted(params):
        values = params.getlist(name)
        if name == "page":
            if values != ["1"]:
                return None
        elif name == "ordering" and values[-1] in orderings or name == "page_size" and values[-1].isdigit():
            kind.append((name, values[-1]))
        elif name in view.prepared_params and len(values) <= MAX_REPEATS and all(map(is_trimmed, values)):
            kind.append((name, len(values), tuple(":" in v for v in values)))
        else:
            return None
    return tuple(kind)


def is_trimmed(value):
    """A value the filters' form passes on as it is: not empty, and no space around it or around
    a ``key:value`` pair's parts. The form strips what surrounds a value (and ignores one left
    empty), which the sample values cannot show, so other values take the general path."""
    return bool(value) and all(part == part.strip() for part in (value, *value.partition(":")[::2]))


def sample_values(kind, variant):
    """The request parameters of ``kind`` with sample values (``key:value`` pairs stay pairs)."""
    data = QueryDict(mutable=True)
    parts = {}
    for item in kind:
        name = item[0]
        if name in ("ordering", "page_size"):
            data[name] = item[1]
            continue
        for index, pair in enumerate(item[2]):
            key = sample(name, index, variant)
            if pair:
                data.appendlist(name, f"{key}k:{key}v")
                parts[f"{key}k"] = (name, index, "key")
                parts[f"{key}v"] = (name, index, "value")
            else:
                data.appendlist(name, key)
                parts[key] = (name, index, "whole")
    return data, parts


class Plan:
    """One kind of request's statements (its page of rows, and a capped count of all its rows
    for when there are more than a page), and how its rows become JSON."""

    def __init__(self, rows, count, compiler, columns, fields, page_size):
        self.rows, self.count, self.db, self.convert = rows, count, compiler.using, Converter(compiler)
        self.columns, self.fields, self.page_size = columns, fields, page_size

    @classmethod
    def build(cls, view, request, kind):
        fields = row_fields(view.get_serializer())
        if fields is None:
            return None
        columns = wanted_columns(fields)
        limit = settings.REGISTRY_EXACT_COUNT_LIMIT
        compiled = []
        for variant in "ab":
            data, parts = sample_values(kind, variant)
            probe = probe_view(view, request, data)
            page_size = probe.paginator.get_page_size(probe.request)
            queryset = probe.filter_queryset(probe.get_queryset())
            try:
                page = queryset.values_list(*columns)[: page_size + 1]
                compiler = page.query.get_compiler(page.db)
                counted = counted_rows(queryset)[: limit + 1] if limit else counted_rows(queryset)
                count_sql, count_params = counted.query.sql_with_params()
                compiled.append((compiler.as_sql(), (f"SELECT COUNT(*) FROM ({count_sql}) counted", count_params)))
            except FieldError:  # a field's source that is not a column (a property, say)
                return None
            compiled.append(parts)
        (page_a, count_a), parts_a, (page_b, count_b), parts_b = compiled
        connection = connections[compiler.using]
        rows = Statement.compare(page_a, page_b, parts_a, parts_b, connection)
        count = Statement.compare(count_a, count_b, parts_a, parts_b, connection)
        if rows is None or count is None:
            return None
        return cls(rows, count, compiler, positions(compiler, fields, columns), fields, page_size)

    def respond(self, view, request):
        values = {}
        for name in request.query_params:
            for index, value in enumerate(request.query_params.getlist(name)):
                values[(name, index)] = value

        def work(cursor):
            rows = self.convert(self.rows.run(cursor, values))
            return rows, (self.count.run(cursor, values)[0][0] if len(rows) > self.page_size else len(rows))

        rows, count = run_planned(self.db, work)
        estimated, next_link = False, None
        if len(rows) > self.page_size:
            next_link = replace_query_param(request.build_absolute_uri(), "page", 2)
        if count > settings.REGISTRY_EXACT_COUNT_LIMIT > 0:
            # Past the exact limit the planner's estimate stands in, as on the general path.
            paginator = CheapCountPaginator(view.filter_queryset(view.get_queryset()), self.page_size)
            count, estimated = paginator.count_past_limit(), paginator.estimated
        origin = request.build_absolute_uri("/")[:-1]
        results = [render(self.fields, self.columns, row, origin) for row in rows[: self.page_size]]
        response = Response({"count": count, "next": next_link, "previous": None, "results": results})
        if estimated:
            response["X-Count-Estimated"] = "true"
        return response


class ObjectPlan:
    """One object by its URL arguments: its statement, and how its row becomes JSON."""

    def __init__(self, statement, compiler, columns, fields, model):
        self.statement, self.db, self.convert = statement, compiler.using, Converter(compiler)
        self.columns, self.fields, self.model = columns, fields, model

    @classmethod
    def build(cls, view, request, kind):
        fields = row_fields(view.get_serializer())
        if fields is None:
            return None
        columns = wanted_columns(fields)

        def rows_for(values):
            probe = probe_view(view, request, QueryDict())
            probe.kwargs = values
            return probe.lookup_queryset().values_list(*columns)[:1]

        statement, compiler = statement_of(kind, rows_for)
        if statement is None:
            return None
        return cls(statement, compiler, positions(compiler, fields, columns), fields, compiler.query.model)

    def respond(self, view, request):
        values = {(name, 0): str(value) for name, value in view.kwargs.items()}
        rows = run_planned(self.db, lambda cursor: self.convert(self.statement.run(cursor, values)))
        if not rows:
            # What get_object_or_404 says.
            raise Http404(f"No {self.model._meta.object_name} matches the given query.")
        return Response(render(self.fields, self.columns, rows[0], request.build_absolute_uri("/")[:-1]))


class ResolvePlan:
    """The variants of one version of a model (by the version's label or an alias): their
    statement, the columns the ranking reads, and how the chosen one becomes JSON."""

    RANKED = ("id", "format", "target_device", "precision", "size", "score", "created_at")
    SHOWN = ("version__registered_model__name", "version__version", "version_id", "version__status")

    def __init__(self, statement, compiler, fields, columns, by):
        self.statement, self.db, self.fields = statement, compiler.using, fields
        self.convert = Converter(compiler)
        self.by = by  # "version" or "alias": what names the version, the same for every request
        where = dict(zip(columns, select_order(compiler, columns)))
        self.positions = positions(compiler, fields, columns)
        self.ranked = [(name, where[name]) for name in self.RANKED]
        self.shown = [where[name] for name in self.SHOWN]

    @classmethod
    def build(cls, view, by):
        serializer = ArtifactSerializer(context=view.get_serializer_context())
        serializer.fields["inspection"].details = True  # one artifact: its inspection whole
        fields = row_fields(serializer)
        if fields is None:
            return None
        columns = wanted_columns(fields)
        columns += [column for column in (*cls.RANKED, *cls.SHOWN) if column not in columns]
        statement, compiler = statement_of(
            ("name", by),
            lambda values: (
                reads.variants_of(model_name=values["name"], **{by: values[by]}).for_list().values_list(*columns)
            ),
        )
        return None if statement is None else cls(statement, compiler, fields, columns, by)

    def respond(self, view, request, constraints):
        by = self.by
        named = normalize_alias_name(constraints["alias"]) if by == "alias" else constraints["version"]
        values = {("name", 0): view.kwargs["name"], (by, 0): named}
        rows = run_planned(self.db, lambda cursor: self.convert(self.statement.run(cursor, values)))
        if not rows:
            return None
        candidates = [SimpleNamespace(row=row, **{name: row[p] for name, p in self.ranked}) for row in rows]
        picked = {key: constraints.get(key) for key in ("precisions", "target_device", "format", "max_size")}
        row = reads.pick_variant(candidates, **picked).row
        model_name, version, version_id, version_status = (row[p] for p in self.shown)
        artifact = render(self.fields, self.positions, row, request.build_absolute_uri("/")[:-1])
        alias = named if by == "alias" else None
        return Response(resolve_answer(model_name, alias, version, version_id, version_status, artifact))


def wanted_columns(fields):
    """Every column the fields read, each once."""
    columns = []
    for _, column, _ in fields:
        columns.extend(c for c in (column if isinstance(column, tuple) else (column,)) if c not in columns)
    return columns


def positions(compiler, fields, columns):
    """Where each field's column (or, for a field written from several, each of its columns) is
    in the compiler's select; ``columns`` are the fields' ``wanted_columns``."""
    where = dict(zip(columns, select_order(compiler, columns)))
    return [tuple(where[c] for c in column) if isinstance(column, tuple) else where[column] for _, column, _ in fields]


def render(fields, positions, row, origin):
    out = {}
    for (name, _, convert), position in zip(fields, positions):
        if isinstance(position, tuple):
            out[name] = convert(tuple(row[p] for p in position), origin)
        else:
            value = row[position]
            out[name] = None if value is None else convert(value, origin)
    return out


def probe_view(view, request, data):
    """A copy of ``view`` answering a request with ``data`` as its parameters."""
    http = HttpRequest()
    http.method = "GET"
    http.GET = data
    http.META = request._request.META
    probe = copy.copy(view)
    probe.__dict__.pop("_paginator", None)
    probe.request = Request(http)
    probe.request.user = request.user
    return probe


def row_fields(serializer):
    """(name, column, convert) for each field of ``serializer``, or None if one of them
    needs more than its row's columns (a nested serializer, a method field). A field that says
    how it is written from columns (``columns`` and ``from_columns``: the artifact's inspection)
    gets the tuple of its columns and is given their values."""
    user_model = get_user_model()
    fields = []
    for name, field in serializer.fields.items():
        if field.write_only:
            continue
        if hasattr(field, "from_columns"):  # a field that says how it is written from columns
            fields.append((name, tuple(field.columns), field.from_columns))
        elif isinstance(field, RouteLinkField):
            fields.append((name, field.lookup_field, route(field.view_name, field.lookup_url_kwarg)))
        elif isinstance(field, SlugRelatedField):
            fields.append((name, f"{field.source}__{field.slug_field}", keep))
        elif isinstance(field, StringRelatedField):
            related = serializer.Meta.model._meta.get_field(field.source).related_model
            if related is not user_model:
                return None
            fields.append((name, f"{field.source}__{user_model.USERNAME_FIELD}", keep))
        elif isinstance(field, PrimaryKeyRelatedField):
            if field.pk_field is not None:
                return None
            fields.append((name, field.source, keep))
        elif isinstance(field, serializers.SerializerMethodField | serializers.BaseSerializer):
            return None
        elif field.source == "*":
            return None
        else:
            fields.append((name, field.source.replace(".", "__"), represent(field)))
    return fields


def keep(value, origin):
    return value


def represent(field):
    if isinstance(field, serializers.DateTimeField):
        return represent_datetime(field)

    def convert(value, origin):
        return field.to_representation(value)

    return convert


def represent_datetime(field):
    """What DRF's DateTimeField writes for an aware date-time in ISO 8601 (its zone, "Z" for UTC),
    without its per-value checks: a page of 50 models has 150 of them."""
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    if getattr(field, "format", api_settings.DATETIME_FORMAT) != ISO_8601 or zone is None:
        return lambda value, origin: field.to_representation(value)

    def convert(value, origin):
        if value.tzinfo is None:
            return field.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


def route(view_name, kwarg):
    """The row's absolute URL, as RouteLinkField writes it (the path reversed once)."""
    prefix, _, suffix = reverse(view_name, kwargs={kwarg: PLACEHOLDER}).partition(PLACEHOLDER)

    def convert(value, origin):
        return f"{origin}{prefix}{quote(str(value), safe=SAFE)}{suffix}"

    return convert
