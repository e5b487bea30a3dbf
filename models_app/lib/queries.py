"""Query expressions several modules share (the API's filters, the catalogue)."""

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
