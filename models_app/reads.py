"""Reads that several faces share: which variant a client gets (resolve) and how versions or
artifacts differ (compare). /api/v1, the Intel routes and the pages call these; nothing here
writes.
"""

import uuid

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404

from .errors import NoMatchingVariant
from .models import Alias, Artifact, ModelVersion, label_names, normalize_alias_name

# --- Resolving the right variant for a device ------------------------------------------------

# Variants built for "any device": OpenVINO's AUTO plugin picks the device at load time.
GENERIC_DEVICES = ("AUTO", "ANY")


def _no_match(constraint, value, available):
    shown = ", ".join(str(a) for a in available) or "none"
    return NoMatchingVariant(
        f"No variant matches: the remaining ones were ruled out by {constraint}={value} (available: {shown}).",
        constraint=constraint,
        available=available,
    )


def resolve_artifact(
    *, registered_model, alias=None, version=None, target_device=None, precisions=None, format=None, max_size=None
):
    """Pick the best artifact of a version (named directly or through an alias) for a device.

    Constraints are applied in this order, and the first one that leaves nothing raises
    NoMatchingVariant naming it and the values that were still available: format,
    target_device (the exact device, or a generic AUTO/ANY build), precision (any of
    ``precisions``), max_size (bytes). Among what is left the ranking is, in order: the
    caller's precision preference (earlier in ``precisions`` wins), an exact device match over a
    generic build, higher score (unscored last), smaller size, newer, and the id as a final tie
    break, so the answer is stable. Returns ``(artifact, version, alias_or_None)``.
    """
    if (alias is None) == (version is None):
        raise ValidationError({"non_field_errors": ["Give exactly one of alias or version."]})
    alias_obj = None
    if alias is not None:
        alias_obj = (
            Alias.objects.select_related("version")
            .filter(registered_model=registered_model, name=normalize_alias_name(alias))
            .first()
        )
        if alias_obj is None:
            raise Http404(f"{registered_model.name} has no alias {alias}.")
        model_version = alias_obj.version
    else:
        model_version = registered_model.versions.filter(version=version).first()
        if model_version is None:
            raise Http404(f"{registered_model.name} has no version {version}.")

    model_version.registered_model = registered_model
    variants = variants_of(model_name=registered_model.name, version=model_version.version)
    candidates = list(variants.select_related("created_by", "inspection"))
    if not candidates:
        raise NoMatchingVariant(
            f"Version {model_version.version} of {registered_model.name} has no artifacts.",
            constraint="version",
            available=[],
        )
    constraints = {"target_device": target_device, "format": format, "max_size": max_size}
    best = pick_variant(candidates, precisions=precisions, **constraints)
    best.version = model_version
    return best, model_version, alias_obj


def variants_of(*, model_name, version=None, alias=None):
    """The variants ``resolve_artifact`` ranks, in one query: those of the version with the
    label ``version`` or the one the alias (its stored, normalised name) points at, of the
    registered model named ``model_name``."""
    variants = Artifact.objects.filter(version__registered_model__name=model_name)
    if alias is not None:
        return variants.filter(version__aliases__name=alias)
    return variants.filter(version__version=version)


def pick_variant(candidates, *, precisions=None, target_device=None, format=None, max_size=None):
    """The best of a version's variants (``candidates``, not empty) for the constraints, ranked
    as ``resolve_artifact`` says; NoMatchingVariant names the first constraint that leaves none.

    Kept apart from the version's lookup so that the rows of the prepared query of
    ``variants_of`` (models_app/api/prepared.py), which carry the same attributes, are ranked by
    this rule."""
    precisions = [p for p in (Artifact.normalize_variant_part("precision", p) for p in precisions or []) if p]
    device = Artifact.normalize_variant_part("target_device", target_device)
    fmt = Artifact.normalize_variant_part("format", format)
    steps = [
        ("format", fmt, lambda a: a.format == fmt, lambda a: a.format),
        ("target_device", device, lambda a: a.target_device in (device, *GENERIC_DEVICES), lambda a: a.target_device),
        ("precision", ",".join(precisions), lambda a: a.precision in precisions, lambda a: a.precision),
        ("max_size", max_size, lambda a: a.size <= max_size, lambda a: a.size),
    ]
    for constraint, value, keep, describe in steps:
        if value in (None, ""):
            continue
        remaining = [a for a in candidates if keep(a)]
        if not remaining:
            available = sorted({describe(a) for a in candidates})
            if constraint == "max_size":
                available = [min(available)]  # the smallest size that would have fitted
            raise _no_match(constraint, value, available)
        candidates = remaining

    def rank(a):
        return (
            precisions.index(a.precision) if precisions else 0,
            0 if not device or a.target_device == device else 1,
            a.score is None,
            -(a.score or 0.0),
            a.size,
            -a.created_at.timestamp(),
            str(a.id),
        )

    return min(candidates, key=rank)


# --- Comparison ------------------------------------------------------------------------------

COMPARE_MAX_ITEMS = 20
VERSION_COMPARE_FIELDS = (
    "registered_model",
    "version",
    "status",
    "description",
    "architecture",
    "category",
    "labels",
    "project_id",
    "project_name",
    "origin",
    "tags",
    "provenance",
    "derived_from",
    "overview",
    "created_by",
    "created_at",
    "artifact_count",
    "total_size",
)
ARTIFACT_COMPARE_FIELDS = (
    "registered_model",
    "version",
    "precision",
    "target_device",
    "target_device_type",
    "format",
    "score",
    "size",
    "sha256",
    "external_id",
    "derived_from",
    "optimization_capabilities",
    "architecture",
    "category",
    "labels",
    "tags",
    "provenance",
    "created_at",
    "inputs",
    "outputs",
    "weight_precision",
)
NUMERIC_FIELDS = {"score", "size", "total_size", "artifact_count"}


def _delta(base, value):
    if base is None or value is None:
        return None
    return round(value - base, 10) if isinstance(value, float) or isinstance(base, float) else value - base


def _row(field, values):
    row = {"field": field, "values": values, "differs": any(v != values[0] for v in values[1:])}
    if field in NUMERIC_FIELDS:
        row["deltas"] = [_delta(values[0], v) for v in values]
    if field == "labels":
        base = set(values[0])
        row["added"] = [sorted(set(v) - base) for v in values]
        row["removed"] = [sorted(base - set(v)) for v in values]
    return row


def _version_values(v):
    artifacts = list(v.artifacts.all())
    return {
        "registered_model": v.registered_model.name,
        "version": v.version,
        "status": v.status,
        "description": v.description,
        "architecture": v.architecture,
        "category": v.category,
        "labels": sorted(label_names(v.labels)),
        "project_id": v.project_id,
        "project_name": v.project_name,
        "origin": v.origin,
        "tags": v.tags,
        "provenance": v.provenance,
        "derived_from": str(v.derived_from_id) if v.derived_from_id else None,
        "overview": v.overview,
        "created_by": v.created_by.get_username() if v.created_by else None,
        "created_at": v.created_at.isoformat(),
        "artifact_count": len(artifacts),
        "total_size": sum(a.size for a in artifacts),
    }


def _artifact_values(a):
    v = a.version
    return {
        "registered_model": v.registered_model.name,
        "version": v.version,
        "precision": a.precision,
        "target_device": a.target_device,
        "target_device_type": a.target_device_type,
        "format": a.format,
        "score": a.score,
        "size": a.size,
        "sha256": a.sha256,
        "external_id": a.external_id,
        "derived_from": str(a.derived_from_id) if a.derived_from_id else None,
        "optimization_capabilities": a.optimization_capabilities,
        "architecture": v.architecture,
        "category": v.category,
        "labels": sorted(label_names(v.labels)),
        "tags": v.tags,
        "provenance": v.provenance,
        "created_at": a.created_at.isoformat(),
        **_inspection_values(a),
    }


def _inspection_values(a):
    """What the file's inspection says, as comparable text (empty before it has run)."""
    inspection = a.inspection_or_none
    return {
        "inputs": inspection.signature_text("inputs") if inspection else "",
        "outputs": inspection.signature_text("outputs") if inspection else "",
        "weight_precision": inspection.weight_precision if inspection else "",
    }


def _fetch_in_order(queryset, ids, kind):
    if not 2 <= len(ids) <= COMPARE_MAX_ITEMS:
        raise ValidationError({kind: [f"Compare between 2 and {COMPARE_MAX_ITEMS} {kind}, not {len(ids)}."]})
    if len(set(ids)) != len(ids):
        raise ValidationError({kind: ["Each id may appear only once."]})
    try:
        ids = [uuid.UUID(str(i)) for i in ids]
    except ValueError as exc:
        raise ValidationError({kind: ["Ids must be UUIDs."]}) from exc
    found = {obj.pk: obj for obj in queryset.filter(pk__in=ids)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise Http404(f"No {kind[:-1]} with id {', '.join(missing)}.")
    return [found[i] for i in ids]


def compare(*, versions=None, artifacts=None):
    """Compare 2..COMPARE_MAX_ITEMS versions or artifacts field by field, the first as baseline.

    Returns ``{"kind", "items", "fields", "variants"?}``: each field row has the values in the
    order asked, ``differs``, and for numbers ``deltas`` against the first item (labels get
    ``added``/``removed``). Comparing versions also lines their variants up by
    precision/device/format with score and size deltas, sha256 and the inputs and outputs the
    files were inspected to have (``signature_differs``). Two queries whatever N is.
    """
    if (versions is None) == (artifacts is None):
        raise ValidationError({"non_field_errors": ["Give either versions or artifacts to compare."]})
    if artifacts is not None:
        items = _fetch_in_order(Artifact.objects.with_version(), artifacts, "artifacts")
        values = [_artifact_values(a) for a in items]
        return {
            "kind": "artifacts",
            "items": [{"id": str(a.id), "label": str(a)} for a in items],
            "fields": [_row(f, [v[f] for v in values]) for f in ARTIFACT_COMPARE_FIELDS],
        }
    items = _fetch_in_order(
        ModelVersion.objects.select_related("registered_model", "created_by").prefetch_related(
            Prefetch("artifacts", queryset=Artifact.objects.select_related("inspection"))
        ),
        versions,
        "versions",
    )
    values = [_version_values(v) for v in items]
    variants = {}
    for index, v in enumerate(items):
        for a in v.artifacts.all():
            key = f"{a.precision}/{a.target_device}/{a.format}"
            variants.setdefault(key, [None] * len(items))[index] = {
                "id": str(a.id),
                "score": a.score,
                "size": a.size,
                "sha256": a.sha256,
                **_inspection_values(a),
            }
    variant_rows = []
    for key in sorted(variants):
        cells = variants[key]
        base = cells[0]
        variant_rows.append(
            {
                "variant": key,
                "values": cells,
                "differs": any((c or {}).get("sha256") != (base or {}).get("sha256") for c in cells[1:]),
                "signature_differs": any(
                    c and base and (c["inputs"], c["outputs"]) != (base["inputs"], base["outputs"]) for c in cells[1:]
                ),
                "score_deltas": [_delta(base and base["score"], c and c["score"]) for c in cells],
                "size_deltas": [_delta(base and base["size"], c and c["size"]) for c in cells],
            }
        )
    return {
        "kind": "versions",
        "items": [{"id": str(v.id), "label": str(v)} for v in items],
        "fields": [_row(f, [v[f] for v in values]) for f in VERSION_COMPARE_FIELDS],
        "variants": variant_rows,
    }
