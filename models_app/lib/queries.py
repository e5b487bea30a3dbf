"""Query expressions and cursors several modules share (the API's filters, the catalogue, the
prepared lists, token authentication)."""

import functools
from contextlib import contextmanager

from django.conf import settings
from django.db import InterfaceError, OperationalError, ProgrammingError, connections
from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast


def json_key_text(key, field):
    """The text value of one top-level key of a JSON column.

    The key goes in as a value (KeyTextTransform), never into a lookup path, so a key such as
    ``a__contains`` cannot turn into another lookup; the Cast makes it a plain text comparison on
    every backend.
    """
    return Cast(KeyTextTransform(key, field), output_field=TextField())


def planned_once_cursor(using):
    """A cursor for statements the registry runs over and over with other values (the prepared
    lists and the token query): on PostgreSQL a server-side binding cursor, so psycopg prepares
    a statement on the connection once it has run a few times and PostgreSQL stops planning it
    again (planning cost more than running these). Elsewhere, or with
    ``DATABASE_PREPARED_STATEMENTS`` off (a transaction-pooling proxy that cannot keep prepared
    statements), Django's own cursor."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        return connection.cursor()
    # What connection.cursor() does before making its cursor.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = _preparing_cursor()(connection.connection)
        if connection.timezone_name == "UTC" and connection.connection.info.parameter_status("TimeZone") == "UTC":
            cursor.adapters.register_loader("timestamptz", _timestamp_loader())
        return connection._prepare_cursor(cursor)


@contextmanager
def generic_plan(cursor):
    """Statements run on ``cursor`` (a ``planned_once_cursor``) in this block use PostgreSQL's
    generic plan of their prepared statement, made once, instead of a plan made for each
    execution's values.

    PostgreSQL keeps planning a prepared statement for each execution when its generic plan
    looks costlier than the plans made for the values it saw: so it does for a ``LIKE`` whose
    pattern it cannot see, though the generic plan is the same one, and planning a join of the
    registry's indexed tables takes longer than running it. The setting, the statements and the
    setting's reset travel in one pipeline, sent when the block ends: one round trip, so fetch
    the statements' rows after the block. As one implicit transaction, a statement that fails
    takes the setting back with it. Elsewhere (SQLite, or no prepared statements) the block runs
    as it is."""
    raw = getattr(cursor, "cursor", None)
    if not isinstance(raw, _preparing_cursor()):
        yield
        return
    # A cursor of its own: a cursor keeps the result of its last statement.
    with raw.connection.cursor() as setting, raw.connection.pipeline():
        setting.execute("SET plan_cache_mode = force_generic_plan")
        yield
        setting.execute("RESET plan_cache_mode")


class StatementRefused(Exception):
    """The database refused a planned statement outside a transaction (PostgreSQL cannot
    prepare it: a parameter whose type it cannot infer, say). Nothing is left behind; the caller
    takes its general path for that statement from now on."""


def run_planned(using, work):
    """``work(cursor)`` on a ``planned_once_cursor``; returns what ``work`` returns.

    Django checks a kept connection before the first statement of each request with a
    ``SELECT 1``, a round trip as long as the token query itself. When a planned statement is the
    request's first, it is the check: if the connection turns out to be dead when it runs (the
    database restarted, a proxy cut an idle connection), the connection is closed and ``work``
    runs once more on a new one, which is where the check would have led. Only outside a
    transaction, where nothing else of the request's can be lost; any other error stands.

    A ProgrammingError outside a transaction becomes StatementRefused; inside one it stands, as
    the general path's error would.
    """
    connection = connections[using]
    try:
        return _run_checking_connection(connection, using, work)
    except ProgrammingError as exc:
        if connection.in_atomic_block:
            raise
        raise StatementRefused() from exc


def _run_checking_connection(connection, using, work):
    stands_in = (
        connection.vendor == "postgresql"
        and settings.DATABASE_PREPARED_STATEMENTS
        and connection.health_check_enabled
        and not connection.health_check_done
        and connection.connection is not None
        and not connection.in_atomic_block
    )
    if stands_in:
        connection.health_check_done = True
    try:
        with planned_once_cursor(using) as cursor:
            return work(cursor)
    except (OperationalError, InterfaceError):
        if not stands_in or not (connection.connection is None or connection.connection.broken):
            raise
    connection.close()
    with planned_once_cursor(using) as cursor:
        return work(cursor)


@functools.cache
def _timestamp_loader():
    """psycopg's own loader of ``timestamptz`` text, compiled where psycopg's C extension is
    installed. Django loads these columns with a subclass of psycopg's Python loader (to set the
    connection's time zone on each value), which psycopg cannot replace by its compiled one: a
    page of 50 registered models has 150 of them. In a session whose time zone is UTC, as
    Django's is, psycopg's loader gives the same values, in UTC."""
    import psycopg
    from psycopg.pq import Format

    return psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT)


@functools.cache
def _preparing_cursor():
    """psycopg's server-side binding cursor, preparing every statement it runs (psycopg keeps
    the prepared statements of a connection, the most recent hundred): Django turns psycopg's
    automatic preparing off."""
    import psycopg

    class PreparingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            return super().execute(query, params, prepare=True, **kwargs)

    return PreparingCursor
