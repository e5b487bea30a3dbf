"""Queries compiled once per kind of request, and run with each request's values.

Django compiles a queryset's SQL again for every request (resolving each column, join and
subquery), which costs more than running it for the requests clients repeat most. Here a
caller's own definition of a query (a function of its values) is compiled twice, from two sets
of sample values; comparing the two compiled queries shows which SQL parameter carries which
value. Later requests of the same kind run that SQL with their own values. A query whose values
do not reach the SQL unchanged (or as ``LIKE`` patterns, or in one case) is never prepared, and
its caller takes the general path. The plans are kept per process, at most ``MAX_PLANS``.

The API's lists, one version and resolve build on this (models_app/api/prepared.py), and so
does Intel's list (``instances``: rows built into the model instances the ORM would build).
"""

import re
import threading
from contextlib import nullcontext

import orjson
from django.conf import settings
from django.core.exceptions import FieldError
from django.db import connections
from django.db.models import JSONField

from .queries import StatementRefused, generic_plan, run_planned

_plans = {}
_lock = threading.Lock()
# A kind of request that cannot be prepared is remembered as such, so it is tried once.
UNPREPARED = object()
# Kinds of request are few in practice; the bounds keep a client inventing new ones (orderings,
# page sizes, repeated parameters) from growing the plans without end.
MAX_PLANS = 512


def instances(key, queryset_for, values, limit, generic=False):
    """Up to ``limit`` rows of ``queryset_for(values)`` as model instances, each with the related
    ones its ``select_related`` names, from SQL compiled once per ``key`` (the kind of query: which
    names ``values`` has); None where the caller must run the queryset itself. ``queryset_for``
    is the caller's one definition of the query, given sample values to compile it; ``generic``
    when the database's generic plan suits every value (queries.generic_plan)."""
    if not settings.REGISTRY_PREPARED_LISTS:
        return None
    build = lambda: InstancesPlan.build(queryset_for, sorted(values), limit, generic)  # noqa: E731
    return respond(key, build, values)


def respond(key, build, *args):
    """The kind's plan's response to ``args`` (the view, the request and what else its plan
    takes), its plan made on first use; None for the general path."""
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) >= MAX_PLANS:
            return None
        plan = build() or UNPREPARED
        with _lock:
            _plans[key] = plan
    if plan is UNPREPARED:
        return None
    try:
        return plan.respond(*args)
    except StatementRefused:
        with _lock:
            _plans[key] = UNPREPARED
        return None


def sample(name, index, variant):
    """A value the filters pass through unchanged and that no real value depends on. It holds a
    ``_`` so a value escaped for ``LIKE`` never looks like the value itself, and letters of both
    cases so a value put in one case never does either."""
    return f"Prepared_{variant}{name}{index}"


def part_of(value, part):
    if part == "whole":
        return value
    key, _, rest = value.partition(":")
    return key if part == "key" else rest


class Statement:
    """SQL compiled once, and which of its parameters take which request value; ``generic``
    when it is to run with PostgreSQL's generic plan (queries.generic_plan)."""

    generic = False

    def __init__(self, sql, params, slots):
        self.sql, self.params, self.slots = sql, params, slots

    @classmethod
    def compare(cls, compiled_a, compiled_b, parts_a, parts_b, connection):
        """From one query compiled with each set of sample values; None unless only the
        values differ between the two, each recognisably."""
        (sql_a, params_a), (sql_b, params_b) = compiled_a, compiled_b
        if sql_a != sql_b or len(params_a) != len(params_b):
            return None
        slots = find_slots(params_a, params_b, parts_a, parts_b, connection)
        return None if slots is None else cls(sql_a, list(params_a), slots)

    def run(self, cursor, values):
        params = list(self.params)
        for position, (name, index, part, form) in self.slots.items():
            value = part_of(values[(name, index)], part)
            params[position] = form(value) if form else value
        with generic_plan(cursor) if self.generic else nullcontext():
            cursor.execute(self.sql, params)
        return cursor.fetchall()


def statement_of(names, rows_for):
    """The Statement of the query ``rows_for(values)`` makes (a ``values_list`` queryset) from a
    value for each of ``names``, with its compiler; (None, None) where the queries made from two
    sets of sample values differ in more than those values, or a column is not one."""
    compiled = []
    for variant in "ab":
        parts = {sample(name, 0, variant): (name, 0, "whole") for name in names}
        try:
            rows = rows_for({name: value for value, (name, _, _) in parts.items()})
            compiler = rows.query.get_compiler(rows.db)
            compiled.append((compiler.as_sql(), parts))
        except FieldError:  # a field's source that is not a column (a property, say)
            return None, None
    (sql_a, parts_a), (sql_b, parts_b) = compiled
    statement = Statement.compare(sql_a, sql_b, parts_a, parts_b, connections[compiler.using])
    return (None, None) if statement is None else (statement, compiler)


class Converter:
    """A compiled query's rows as the ORM returns them, each column through its converters (a
    JSON field's decoding, a date's time zone), with the converters looked up once: Django's
    ``results_iter`` looks them up again for every query, at a cost that grows with the columns."""

    def __init__(self, compiler):
        self.compiler = compiler
        converters = compiler.get_converters([column for column, _, _ in compiler.select[: compiler.col_count]])
        self.converters = {
            position: ([json_decoding(converter) for converter in column_converters], expression)
            for position, (column_converters, expression) in converters.items()
        }

    def __call__(self, rows):
        return list(self.compiler.apply_converters(rows, self.converters)) if self.converters else rows


# Digits enough for an integer past 64 bits, which orjson would read as a float.
LONG_NUMBER = re.compile(r"\d{19}")


def json_decoding(converter):
    """A JSON field's decoding (``JSONField.from_db_value``) done by orjson, the rest as it is.

    A page of ten versions decodes forty JSON columns, and the standard library's decoder was
    the largest single cost of its rows. orjson gives the same values, except that it reads an
    integer past 64 bits as a float and refuses what the standard library accepts beyond JSON
    (infinities, lone surrogates): text that may hold either is decoded by the field itself."""
    field = getattr(converter, "__self__", None)
    if not isinstance(field, JSONField) or converter.__func__ is not JSONField.from_db_value or field.decoder:
        return converter

    def convert(value, expression, connection):
        if isinstance(value, str) and LONG_NUMBER.search(value) is None:
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        return converter(value, expression, connection)

    return convert


def select_order(compiler, columns):
    """Where each of ``columns`` is in the compiler's select (Django keeps values_list's order
    since 5.2, each column under its own alias)."""
    names = [expression.target.attname if alias is None else alias for expression, _, alias in compiler.select]
    return [names.index(column) for column in columns]


def find_slots(params_a, params_b, parts_a, parts_b, connection):
    """Which SQL parameter carries which request value, and in which form: as itself, escaped for
    a ``LIKE`` without wildcards (``iexact`` on SQLite) or inside a ``LIKE`` pattern, each as
    given or in upper or lower case (a filter matching a column stored in one case; the sample
    values are in mixed case to show it); None when a parameter changes in any other way."""
    escape = connection.ops.prep_for_like_query
    likes = [None, escape, lambda value: f"%{escape(value)}%"]
    forms = [compose(case, like) for case in (None, str.upper, str.lower) for like in likes]
    slots = {}
    for position, (a, b) in enumerate(zip(params_a, params_b)):
        if a == b:
            continue
        slots[position] = slot(a, b, parts_a, parts_b, forms)
        if slots[position] is None:
            return None
    return slots


def compose(case, like):
    """The form ``case`` then ``like`` make of a value; None for the value itself."""
    if case is None or like is None:
        return case or like
    return lambda value: like(case(value))


def slot(a, b, parts_a, parts_b, forms):
    """(name, index, part, form) of the request value that became ``a`` with one set of sample
    values and ``b`` with the other, through one of ``forms``; None if none did."""
    for value_a, where in parts_a.items():
        value_b = next(v for v, other in parts_b.items() if other == where)
        for form in forms:
            if (a, b) == ((form(value_a), form(value_b)) if form else (value_a, value_b)):
                return (*where, form)
    return None


class InstancesPlan:
    """A query of model instances with their related ones (``select_related``): its statement
    over the columns the queryset loads of each (all of them, or its ``only()``), and how a row
    becomes the instances, linked."""

    def __init__(self, statement, compiler, parts):
        self.statement, self.db, self.parts = statement, compiler.using, parts
        self.convert = Converter(compiler)

    @classmethod
    def build(cls, queryset_for, names, limit, generic=False):
        queryset = queryset_for({name: sample(name, 0, "a") for name in names})
        chain = related_chain(queryset.model, queryset.query.select_related)
        if chain is None:
            return None
        # The columns each model's instances are built with: the queryset's only() or defer()
        # where it has one, every column otherwise.
        masks = [queryset.query.get_select_mask()]
        for _, parent, _, field in chain[1:]:
            masks.append(masks[parent].get(field, {}))
        loaded = [attnames(model, {f.name for f in mask} or None) for (_, _, model, _), mask in zip(chain, masks)]
        columns = [f"{path}{attname}" for (path, _, _, _), own in zip(chain, loaded) for attname in own]
        statement, compiler = statement_of(names, lambda values: queryset_for(values).values_list(*columns)[:limit])
        if statement is None:
            return None
        statement.generic = generic
        start, where = 0, []
        for (_, parent, model, field), own in zip(chain, loaded):
            spots = select_order(compiler, columns[start : start + len(own)])
            where.append((parent, model, field, spots, own, own.index(model._meta.pk.attname)))
            start += len(own)
        return cls(statement, compiler, where)

    def respond(self, values):
        values = {(name, 0): value for name, value in values.items()}
        rows = run_planned(self.db, lambda cursor: self.convert(self.statement.run(cursor, values)))
        return [self.assemble(row) for row in rows]

    def assemble(self, row):
        made = []
        for parent, model, field, positions, names, pk in self.parts:
            values = [row[p] for p in positions]
            # A null primary key: a nullable relation that leads nowhere on this row.
            instance = model.from_db(self.db, names, values) if values[pk] is not None else None
            if field is not None:
                field.set_cached_value(made[parent], instance)
            made.append(instance)
        return made[0]


def related_chain(model, select_related):
    """(column prefix, index of the parent, model, the parent's field) of ``model`` and of each
    model its ``select_related`` (the query's nested dict) brings, parents first; None where one
    is not a forward relation (or every relation is asked for), which this does not rebuild."""
    if not isinstance(select_related, dict):
        return None if select_related else [("", None, model, None)]
    chain, pending = [("", None, model, None)], [(0, select_related)]
    while pending:
        index, nested = pending.pop(0)
        path, _, parent, _ = chain[index]
        for name, deeper in nested.items():
            field = parent._meta.get_field(name)
            if not (field.is_relation and field.concrete):
                return None
            chain.append((f"{path}{name}__", index, field.related_model, field))
            pending.append((len(chain) - 1, deeper))
    return chain


def attnames(model, names=None):
    """The columns of ``model``'s fields ``names`` (all of them by default), in the order of its
    fields: the order ``from_db`` takes values in."""
    return [field.attname for field in model._meta.concrete_fields if names is None or field.name in names]
