"""A lock every replica of the registry sees: for chores that cron may start on several hosts."""

from contextlib import contextmanager

from django.db import connection


@contextmanager
def one_at_a_time(name):
    """Run the block while holding the database-wide lock ``name``; the same block started
    elsewhere (another host's cron, a second replica) waits for it, then finds the work done.

    A PostgreSQL advisory lock held by this connection's session, not a transaction: the block
    talks to object storage for minutes, and a transaction that long would hold back vacuum.
    PostgreSQL drops the lock if the process dies. SQLite is one file on one host: no lock.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [name])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [name])
