"""Model validation as every writer runs it (the API's serializers and the services)."""


def full_clean(instance, exclude=()):
    """``instance.full_clean`` without the checks the database makes anyway.

    Uniqueness and constraints are left to the database: a check before the insert races
    another writer, and the insert's error is the answer. So is the existence of a related row
    this request has already read (the version's registered model, the acting user): Django
    would ask the database whether it still exists, one query per relation, and the foreign key
    constraint answers that at the insert all the same. A relation given by id alone, or to an
    unsaved object, is still checked.
    """
    loaded = [
        field.name
        for field in instance._meta.concrete_fields
        if field.is_relation and field.is_cached(instance) and _is_stored(field.get_cached_value(instance))
    ]
    instance.full_clean(exclude=[*exclude, *loaded], validate_unique=False, validate_constraints=False)
    return instance


def _is_stored(related):
    return related is not None and not related._state.adding
