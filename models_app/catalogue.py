"""The catalogue's search: a free-text query, facets and sorting over registered models.

A model matches the variant facets (precision, target device, format) when *one* of its
artifacts has all the chosen values, so "INT8 + NPU" finds models that have an INT8 build for
the NPU, not models with some INT8 file and some other NPU file. Facet counts are disjunctive:
each facet is counted with every filter but its own applied, so the other values of a chosen
facet stay visible to switch to. Every facet costs one grouped query, whatever the data size.

Archived versions stay out of the facets and their counts unless ``include_archived`` is asked
for, as they stay out of the cards: a facet never finds a model for a build nobody should pick.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, F, OuterRef, Q

from .lib.queries import json_key_text
from .models import Artifact, ModelVersion, RegisteredModel

# Facet name -> field, on the version or on the artifact.
VERSION_FACETS = {"category": "category", "origin": "origin"}
ARTIFACT_FACETS = {"precision": "precision", "target_device": "target_device", "format": "format"}
FACET_LABELS = {
    "category": "Category",
    "precision": "Precision",
    "target_device": "Target device",
    "format": "Format",
    "origin": "Origin",
    "tag": "Tag",
}
TAG_FACET_SIZE = 30
FACET_ORDER = ["category", "precision", "target_device", "format", "origin"]

SORTS = {
    "name": ("Name", [F("name").asc()]),
    "updated": ("Recently updated", [F("latest_version_at").desc(nulls_last=True), F("name").asc()]),
    "created": ("Newest", [F("created_at").desc(), F("name").asc()]),
    "versions": ("Most versions", [F("version_count").desc(), F("name").asc()]),
}
DEFAULT_SORT = "name"
VIEWS = ("cards", "table")
LIVE_STATUSES = [ModelVersion.Status.ACTIVE, ModelVersion.Status.DEPRECATED]


def _tag_text(key):
    return json_key_text(key, "tags")


@dataclass
class CatalogueQuery:
    """The catalogue's filters as read from the query string."""

    q: str = ""
    tag: str = ""
    sort: str = DEFAULT_SORT
    facets: dict = field(default_factory=dict)
    include_archived: bool = False
    view: str = "cards"

    @classmethod
    def from_params(cls, params):
        facets = {}
        for name in FACET_ORDER:
            # Stored variant keys are normalised (FP16, NPU, onnx): match what the user typed to them.
            value = Artifact.normalize_variant_part(name, params.get(name, ""))
            if value:
                facets[name] = value
        sort = params.get("sort", DEFAULT_SORT)
        view = params.get("view", "cards")
        return cls(
            q=params.get("q", "").strip(),
            tag=params.get("tag", "").strip(),
            sort=sort if sort in SORTS else DEFAULT_SORT,
            facets=facets,
            include_archived=params.get("include_archived") in ("1", "true", "yes"),
            view=view if view in VIEWS else "cards",
        )

    @property
    def is_filtered(self):
        return bool(self.q or self.tag or self.facets)

    def _base(self):
        """Registered models matching the free text and the tag (model-level criteria)."""
        models = RegisteredModel.objects.all()
        if self.q:
            in_versions = ModelVersion.objects.filter(
                Q(architecture__icontains=self.q) | Q(project_name__icontains=self.q) | Q(category__icontains=self.q),
                registered_model=OuterRef("pk"),
            )
            models = models.filter(Q(name__icontains=self.q) | Q(description__icontains=self.q) | Exists(in_versions))
        if self.tag:
            key, sep, value = self.tag.partition(":")
            # The key goes in as a value (json_key_text, has_key), never into a lookup path.
            if sep:
                versions = ModelVersion.objects.alias(tag_value=_tag_text(key)).filter(
                    tag_value=value, registered_model=OuterRef("pk")
                )
                models = models.alias(tag_value=_tag_text(key)).filter(Q(tag_value=value) | Exists(versions))
            else:
                versions = ModelVersion.objects.filter(tags__has_key=key, registered_model=OuterRef("pk"))
                models = models.filter(Q(tags__has_key=key) | Exists(versions))
        return models

    @property
    def has_variant_facet(self):
        return any(name in ARTIFACT_FACETS for name in self.facets)

    def _version_filter(self, facets, prefix=""):
        """Lookups on a version (``prefix`` reaches it from another row) for the chosen version facets."""
        lookups = {f"{prefix}{VERSION_FACETS[n]}__iexact": v for n, v in facets.items() if n in VERSION_FACETS}
        if not self.include_archived:
            lookups[f"{prefix}status__in"] = LIVE_STATUSES
        return lookups

    def _variant_filter(self, facets):
        """Lookups on an artifact for the chosen facets (version facets reached through its version)."""
        lookups = self._version_filter(facets, prefix="version__")
        for name, value in facets.items():
            if name in ARTIFACT_FACETS:
                lookups[ARTIFACT_FACETS[name]] = value
        return lookups

    def _apply(self, models, facets):
        if not facets:
            return models
        if any(name in ARTIFACT_FACETS for name in facets):
            # One artifact must carry every chosen value (see the module docstring).
            match = Artifact.objects.filter(version__registered_model=OuterRef("pk"), **self._variant_filter(facets))
        else:
            match = ModelVersion.objects.filter(registered_model=OuterRef("pk"), **self._version_filter(facets))
        return models.filter(Exists(match))

    def models(self):
        """The matching registered models, sorted, with what a catalogue row shows."""
        return self._apply(self._base(), self.facets).for_catalogue().order_by(*SORTS[self.sort][1])

    def attach_matches(self, models):
        """With a variant facet chosen, give each model of a page its matching variants
        (``model.matches``, newest version first) so the card can say where the match is: it
        may be in an older version than the one the card shows. One query for the page."""
        if not self.has_variant_facet:
            return models
        found = {}
        rows = (
            Artifact.objects.filter(
                version__registered_model__in=[m.pk for m in models], **self._variant_filter(self.facets)
            )
            .select_related("version")
            .only(
                "id",
                "precision",
                "target_device",
                "format",
                "score",
                "version__version",
                "version__registered_model_id",
                "version__created_at",
                "version__status",
            )
            .order_by("-version__created_at", "-version_id", "precision", "target_device", "format")
        )
        for artifact in rows:
            found.setdefault(artifact.version.registered_model_id, []).append(artifact)
        for model in models:
            model.matches = found.get(model.pk, [])
        return models

    def facet_counts(self):
        """``[(facet, label, [(value, count, selected)])]``: models per value, one query per facet.

        Counting distinct models per value reads every matching artifact, the one part of the
        page whose cost grows with the catalogue, so the counts are cached for
        ``REGISTRY_FACET_CACHE_SECONDS`` (0 turns that off). They may lag a write by that long;
        the list of models itself is always live.
        """
        seconds = settings.REGISTRY_FACET_CACHE_SECONDS
        if not seconds:
            return self._facet_counts()
        key = (
            "catalogue-facets:"
            + hashlib.sha256(
                repr((self.q, self.tag, sorted(self.facets.items()), self.include_archived)).encode()
            ).hexdigest()
        )
        counts = cache.get(key)
        if counts is None:
            counts = self._facet_counts()
            cache.set(key, counts, seconds)
        return counts

    def _facet_counts(self):
        base = self._base()
        # Without free text or tag every model is in the base: skip the pointless semi-join.
        in_base = {} if not (self.q or self.tag) else None
        result = []
        for name in FACET_ORDER:
            others = {k: v for k, v in self.facets.items() if k != name}
            has_variant = name in ARTIFACT_FACETS or any(k in ARTIFACT_FACETS for k in others)
            if has_variant:
                rows = Artifact.objects.filter(
                    **({"version__registered_model__in": base.values("pk")} if in_base is None else {}),
                    **self._variant_filter(others),
                )
                column = ARTIFACT_FACETS.get(name) or f"version__{VERSION_FACETS[name]}"
                model_key = "version__registered_model"
            else:
                rows = ModelVersion.objects.filter(
                    **({"registered_model__in": base.values("pk")} if in_base is None else {}),
                    **self._version_filter(others),
                )
                column, model_key = VERSION_FACETS[name], "registered_model"
            counts = (
                rows.exclude(**{column: ""})
                .values_list(column)
                .annotate(n=Count(model_key, distinct=True))
                .order_by("-n", column)[:30]
            )
            chosen = self.facets.get(name, "")
            values = [(value, n, value.lower() == chosen.lower()) for value, n in counts]
            if chosen and not any(selected for _, _, selected in values):
                values.insert(0, (chosen, 0, True))  # keep a chosen value visible so it can be cleared
            result.append((name, FACET_LABELS[name], values))
        result.append(("tag", FACET_LABELS["tag"], self._tag_counts()))
        return result

    def _tag_counts(self):
        """Models per ``key:value`` tag among the models every other filter leaves, so tags are a
        facet from the start. Model-level tags, counted here from one column of one query."""
        counts = Counter()
        for tags in self._apply(self._base(), self.facets).values_list("tags", flat=True):
            counts.update(f"{k}:{v}" for k, v in (tags or {}).items() if isinstance(v, str))
        chosen = self.tag
        values = [(value, n, value == chosen) for value, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        values = values[:TAG_FACET_SIZE]
        if chosen and not any(selected for _, _, selected in values):
            values.insert(0, (chosen, counts.get(chosen, 0), True))
        return values
