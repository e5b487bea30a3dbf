"""The registry's domain: a registered model has versions; a version has artifacts.

An artifact is one *variant* of a version: the model file for one precision, target device and
format (for example the INT8 OpenVINO build for NPU). Metadata that all variants share (labels,
architecture, provenance) lives on the version.
"""

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator, RegexValidator
from django.db import models
from django.db.models import Count, Max, OuterRef, Prefetch, Q, Subquery, Sum
from django.db.models.functions import Coalesce, Upper
from django.urls import reverse
from django.utils import timezone

from .errors import Conflict
from .markup import plain_snippet
from .storage import get_artifact_storage

# Names appear in URLs (/registered-models/<name>/): anything printable but a slash.
NAME_VALIDATOR = RegexValidator(r"^[^/\\\x00-\x1f]+$", "Names may not contain slashes or control characters.")
# The id pattern Intel's Model Registry accepted in paths; client-chosen ids must match it.
EXTERNAL_ID_PATTERN = r"^[a-zA-Z0-9_-]{16,128}$"
EXTERNAL_ID_VALIDATOR = RegexValidator(EXTERNAL_ID_PATTERN, "An id must be 16 to 128 letters, digits, '_' or '-'.")


def refuse_nul(value):
    """PostgreSQL's jsonb cannot hold a NUL character, in a key or in a string; the insert would
    fail in the driver, which is no outage: the free JSON fields' validators refuse it first."""
    if holds_nul(value):
        raise ValidationError(ProhibitNullCharactersValidator.message, code=ProhibitNullCharactersValidator.code)


def holds_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(map(holds_nul, value))
    return False


def validate_tags(value):
    """Tags are a flat object of string keys to string values (``{"team": "vision"}``)."""
    if not isinstance(value, dict):
        raise ValidationError("Tags must be an object of key/value strings.")
    for key, val in value.items():
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", key):
            raise ValidationError(f"Tag key {key!r} must be 1-64 letters, digits, '_', '.', ':' or '-'.")
        if not isinstance(val, str) or len(val) > 256:
            raise ValidationError(f"Tag {key!r} must have a string value of at most 256 characters.")
    refuse_nul(value)


def validate_json_object(value):
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.")
    refuse_nul(value)


# Caps on free text and lists that every page and list response carries: generous for a model
# card or a detector's classes, far below what would make a page or a response unwieldy.
DESCRIPTION_MAX_LENGTH = 50_000
MAX_LABELS = 1_000


def validate_labels(value):
    """Labels are a list of names, or of objects as Geti sends them (``{"name": ..., ...}``)."""
    if not isinstance(value, list) or not all(isinstance(x, (str, dict)) for x in value):
        raise ValidationError("Labels must be a list of strings or objects.")
    if len(value) > MAX_LABELS:
        raise ValidationError(f"At most {MAX_LABELS} labels.")
    refuse_nul(value)


def label_names(labels):
    """The names of a labels list, in order: strings as they are, an object's ``name`` (the text
    of an object that has none, so nothing vanishes from view)."""
    return [str(x.get("name", x)) if isinstance(x, dict) else str(x) for x in labels or []]


class Timestamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class RegisteredModelQuerySet(models.QuerySet):
    def with_stats(self):
        """Version count and latest-version time in the same query, for lists that show them.

        Correlated subqueries rather than a join with GROUP BY: sorted by name, the database
        computes them for a page's rows only, Django leaves them out of the pagination COUNT, and
        the newest version is read from the (registered_model, -created_at) index.
        """
        of_model = ModelVersion.objects.filter(registered_model=OuterRef("pk")).order_by()
        return self.annotate(
            version_count=Coalesce(
                Subquery(of_model.values("registered_model").annotate(n=Count("pk")).values("n")), 0
            ),
            latest_version_at=Subquery(of_model.order_by("-created_at").values("created_at")[:1]),
        )

    def for_catalogue(self):
        """What a catalogue row shows, at a fixed number of queries whatever the page size:
        the stats (``with_stats()``), the newest version (a sliced prefetch: one query for the
        whole page), that version's variants (one more) and the model's aliases (one more).
        """
        # The newest version a row shows is a live one: an archived build is not on offer.
        newest = (
            ModelVersion.objects.exclude(status=ModelVersion.Status.ARCHIVED)
            .order_by("-created_at", "-pk")
            .select_related("created_by")
            .only("id", "registered_model_id", "version", "status", "category", "created_at", "created_by__username")
            .prefetch_related(
                Prefetch(
                    "artifacts",
                    queryset=Artifact.objects.only("id", "version_id", "precision", "target_device", "format", "score"),
                )
            )
        )
        return self.with_stats().prefetch_related(
            Prefetch("versions", queryset=newest[:1], to_attr="newest"),
            Prefetch("aliases", queryset=Alias.objects.select_related("version__registered_model").order_by("name")),
        )


class RegisteredModel(Timestamped):
    """A named model (for example ``person-detection``) whose versions the registry tracks."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True, validators=[NAME_VALIDATOR])
    description = models.TextField(blank=True, validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)])
    # The description's first prose as plain text, kept in step by save(): lists show it without
    # rendering Markdown for every row.
    description_snippet = models.CharField(max_length=200, blank=True, editable=False)
    tags = models.JSONField(default=dict, blank=True, validators=[validate_tags])

    objects = RegisteredModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        # Filters compare case-insensitively (UPPER(x) = UPPER(%s)); substring search uses the
        # trigram indexes of migration 0003 on PostgreSQL.
        indexes = [
            models.Index(Upper("name"), name="regmodel_name_upper"),
            models.Index(fields=["updated_at"], name="regmodel_updated"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        """Every writer (API, admin, importer, services) saves through here, so the snippet
        cannot go stale; a save limited to other fields leaves it alone."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "description" in update_fields:
            self.description_snippet = plain_snippet(self.description)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "description_snippet"}
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("models_app:registeredmodel-detail", kwargs={"name": self.name})

    def artifact_files(self):
        return Artifact.objects.filter(version__registered_model=self).values_list("file", flat=True)

    @property
    def newest_version(self):
        """The newest version, from ``for_catalogue()``'s prefetch when present."""
        if hasattr(self, "newest"):
            return self.newest[0] if self.newest else None
        return self.versions.order_by("-created_at", "-pk").first()


# The metadata a version's variants share, kept once on the version, and each variant's own; the
# fields a writer may set on each (the variant key, size, checksum and file are the server's).
VERSION_FIELDS = (
    "description",
    "architecture",
    "category",
    "labels",
    "score_metric",
    "overview",
    "project_id",
    "project_name",
    "origin",
    "tags",
    "provenance",
)
ARTIFACT_FIELDS = (
    "precision",
    "target_device",
    "target_device_type",
    "format",
    "score",
    "optimization_capabilities",
    "external_id",
    "derived_from",
)


def _per_version(aggregate):
    """``aggregate`` over each version's variants, as a correlated subquery.

    Rather than a join with GROUP BY: computed for the rows of a page only, and left out of the
    pagination COUNT (a join with GROUP BY would not be).
    """
    artifacts = Artifact.objects.filter(version=OuterRef("pk")).order_by().values("version")
    return Subquery(artifacts.annotate(value=aggregate).values("value"))


class ModelVersionQuerySet(models.QuerySet):
    def with_totals(self):
        """Variant count and total size in the same query, for version lists."""
        return self.annotate(
            artifact_count=Coalesce(_per_version(Count("pk")), 0), total_size=_per_version(Sum("size"))
        )

    def with_best_score(self):
        """The best variant score, for the lists that show it (pages, admin); the API does not."""
        return self.annotate(best_score=_per_version(Max("score")))


class ModelVersion(Timestamped):
    """One version of a registered model, with the metadata every variant of it shares."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        DEPRECATED = "deprecated"
        ARCHIVED = "archived"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=100, validators=[NAME_VALIDATOR])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    description = models.TextField(blank=True, validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)])
    architecture = models.CharField(max_length=200, blank=True, db_index=True)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    labels = models.JSONField(default=list, blank=True, validators=[validate_labels])
    # What the variants' scores measure (accuracy, f-measure, mAP@0.5...): one metric per version,
    # so the scores of its variants compare.
    score_metric = models.CharField(max_length=64, blank=True)
    overview = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    project_id = models.CharField(max_length=128, blank=True, db_index=True)
    project_name = models.CharField(max_length=200, blank=True, db_index=True)
    origin = models.CharField(max_length=64, blank=True, default="upload", db_index=True)
    tags = models.JSONField(default=dict, blank=True, validators=[validate_tags])
    # Lineage: what this version was derived from (a fine-tune of an earlier version, say), and
    # free provenance such as the training dataset, source repository and commit.
    derived_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derivatives"
    )
    provenance = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["registered_model__name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="unique_version_per_model"),
        ]
        indexes = [
            models.Index(Upper("category"), name="version_category_upper"),
            models.Index(Upper("origin"), name="version_origin_upper"),
            models.Index(Upper("status"), name="version_status_upper"),
            models.Index(fields=["version"], name="version_version"),
            models.Index(fields=["updated_at"], name="version_updated"),
            models.Index(fields=["registered_model", "-created_at"], name="version_model_created"),
        ]

    def __str__(self):
        return f"{self.registered_model.name}:{self.version}"

    def get_absolute_url(self):
        return reverse(
            "models_app:version-detail",
            kwargs={"name": self.registered_model.name, "version": self.version},
        )

    def clean(self):
        if self.derived_from_id and self.derived_from_id == self.id:
            raise ValidationError({"derived_from": "A version cannot be derived from itself."})

    def refuse_while_aliased(self, remedy):
        """Raise Conflict naming the aliases that point at this version, if any; ``remedy`` says
        what to do about them."""
        aliases = sorted(self.aliases.values_list("name", flat=True))
        if aliases:
            raise Conflict(
                f"Version {self.version} of {self.registered_model.name} is the target of "
                f"alias(es) {', '.join(aliases)}; {remedy}"
            )

    def check_archivable(self):
        """An alias must never lead to an archived version: archiving waits until none points here."""
        self.refuse_while_aliased("move them before archiving it.")

    def check_takes_artifacts(self):
        """An archived version is frozen: no file is added to it or moved into it."""
        if self.status == self.Status.ARCHIVED:
            raise Conflict(
                f"Version {self.version} of {self.registered_model.name} is archived; it takes no new artifacts."
            )

    def check_alias_target(self, registered_model):
        """An alias of ``registered_model`` may point here: a version of that model, not archived
        (ValidationError for another model's version, Conflict for an archived one)."""
        if self.registered_model_id != registered_model.pk:
            raise ValidationError({"version": "An alias can only point to a version of its own model."})
        if self.status == self.Status.ARCHIVED:
            raise Conflict(
                f"Version {self.version} of {registered_model.name} is archived; an alias cannot point to it."
            )

    @property
    def variants(self):
        """Artifacts widest precision first; sorted here so a prefetch of ``artifacts`` serves it."""
        return sorted(self.artifacts.all(), key=Artifact.variant_order)

    def variant_matrix(self):
        """The variants as a precision x target device grid (one query).

        Returns ``(devices, rows)``: the device columns, and per precision (widest first) one
        cell per device holding the artifacts of that pair (several when formats differ).
        """
        artifacts = list(self.artifacts.all())
        devices = sorted({a.target_device for a in artifacts})
        precisions = sorted({a.precision for a in artifacts}, key=Artifact.precision_order)
        rows = [
            (
                precision,
                [
                    [a for a in artifacts if a.precision == precision and a.target_device == device]
                    for device in devices
                ],
            )
            for precision in precisions
        ]
        return devices, rows


class ArtifactQuerySet(models.QuerySet):
    def with_version(self):
        """Everything a list of artifacts shows, in one query."""
        return self.select_related("version", "version__registered_model", "created_by", "inspection")

    def for_list(self):
        """``with_version()`` loading only what a list row shows of the version, model and user.

        A page of 50 then neither transfers nor decodes the versions' and models' JSON and text
        columns (labels, overview, tags, descriptions...) that it never shows. The inspection
        comes in the same query, without its ``details``.
        """
        own = [field.name for field in self.model._meta.concrete_fields]
        return self.with_version().only(
            *own,
            "version__version",
            "version__registered_model__name",
            "created_by__username",
            *(f"inspection__{name}" for name in ArtifactInspection.LIGHT_FIELDS),
        )

    def inspection_status(self, *statuses):
        """Artifacts whose inspection has one of ``statuses``; "pending" includes those that have
        no inspection row yet (registered before inspections existed, or still queued)."""
        condition = Q(inspection__status__in=statuses)
        if "pending" in statuses:
            condition |= Q(inspection__isnull=True)
        return self.filter(condition)


VARIANT_COVER = ["format", "precision", "target_device", "version"]

# The variant key of an artifact, and what a writer that leaves a part out (or blank) gets.
VARIANT_DEFAULTS = {"precision": "FP32", "target_device": "CPU", "format": "openvino"}
# How each part is stored, so "fp16"/"FP16" or "cpu"/"CPU" cannot make two variants.
VARIANT_CASE = {"precision": str.upper, "target_device": str.upper, "format": str.lower}


class Artifact(Timestamped):
    """One variant of a version: a model file for a precision, target device and format.

    ``size`` and ``sha256`` are computed by the server while the bytes stream through, so pages
    and API answers never ask the storage for them.
    """

    class Precision(models.TextChoices):
        FP32 = "FP32"
        FP16 = "FP16"
        BF16 = "BF16"
        FP8 = "FP8"
        INT8 = "INT8"
        INT4 = "INT4"
        MIXED = "MIXED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # An id chosen by a client of the Intel-compatible API or taken from Geti (its optimized-model
    # id), so such clients keep finding the entry under the id they know.
    external_id = models.CharField(
        max_length=128, unique=True, null=True, blank=True, validators=[EXTERNAL_ID_VALIDATOR]
    )
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="artifacts")
    file = models.FileField(storage=get_artifact_storage, max_length=500)
    precision = models.CharField(
        max_length=8, choices=Precision.choices, default=VARIANT_DEFAULTS["precision"], db_index=True
    )
    target_device = models.CharField(max_length=64, default=VARIANT_DEFAULTS["target_device"], db_index=True)
    target_device_type = models.CharField(max_length=64, blank=True, db_index=True)
    format = models.CharField(max_length=32, default=VARIANT_DEFAULTS["format"], db_index=True)
    score = models.FloatField(null=True, blank=True)
    optimization_capabilities = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    size = models.BigIntegerField(editable=False)
    sha256 = models.CharField(max_length=64, editable=False, db_index=True)
    original_filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    derived_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derivatives"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Indexed below together with the variant columns, as the other sort keys.
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ArtifactQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "precision", "target_device", "format"], name="unique_variant_per_version"
            ),
            models.CheckConstraint(condition=Q(size__gte=0), name="artifact_size_not_negative"),
        ]
        indexes = [
            # precision, target_device and format are stored normalised and filtered exactly:
            # this index serves their combinations, and counts of them are index-only.
            models.Index(
                fields=["format", "precision", "target_device"], include=["version"], name="artifact_variant_key"
            ),
            models.Index(Upper("target_device_type"), name="artifact_devtype_upper"),
            models.Index(Upper("sha256"), name="artifact_sha256_upper"),
            # The sort keys of artifact lists, each carrying the variant columns and the version:
            # a filtered, sorted page finds its ids in the index alone (index-only scans), where
            # a plain index would visit the table for every row it skips, 8,000 for page 20.
            # The id is the second key: lists break ties by it (api.filters.OrderingFilter).
            *(
                models.Index(fields=[key, "id"], include=VARIANT_COVER, name=f"artifact_{key}_cover")
                for key in ("created_at", "updated_at", "score", "size")
            ),
            models.Index(fields=["version", "-created_at"], name="artifact_version_created"),
        ]

    def __str__(self):
        return f"{self.version} {self.precision}/{self.target_device}/{self.format}"

    def clean_fields(self, exclude=None):
        """Normalise the variant key first, so "fp16"/"FP16" or "cpu"/"CPU" cannot make two
        variants, then check a precision outside the list with a message that names the list."""
        for part in VARIANT_CASE:
            setattr(self, part, self.normalize_variant_part(part, getattr(self, part)))
        if self.precision not in self.Precision.values:
            raise ValidationError(
                {
                    "precision": (
                        f"{self.precision or 'An empty value'} is not a supported precision "
                        f"({', '.join(self.Precision.values)})."
                    )
                }
            )
        super().clean_fields(exclude=exclude)

    def clean(self):
        errors = {}
        if not self.target_device:
            errors["target_device"] = "This field may not be blank."
        if not re.fullmatch(r"[a-z0-9][a-z0-9._+-]{0,31}", self.format):
            errors["format"] = "A format is a short lower-case name such as openvino or onnx."
        if self.derived_from_id and self.derived_from_id == self.id:
            errors["derived_from"] = "An artifact cannot be derived from itself."
        if errors:
            raise ValidationError(errors)

    @property
    def registered_model(self):
        return self.version.registered_model

    @staticmethod
    def normalize_variant_part(name, value):
        """``value`` stripped and, for a part of the variant key, in the case it is stored in (a
        filter value is matched to the stored column this way)."""
        value = (value or "").strip()
        return VARIANT_CASE[name](value) if name in VARIANT_CASE else value

    @classmethod
    def variant_key(cls, fields):
        """The stored variant key (precision, target_device, format) an artifact written with
        ``fields`` gets: the defaults for parts left out or blank, each part normalised."""
        return {
            name: cls.normalize_variant_part(name, fields.get(name) or default)
            for name, default in VARIANT_DEFAULTS.items()
        }

    @property
    def inspection_or_none(self):
        """The file's inspection, or None before it has run."""
        try:
            return self.inspection
        except ArtifactInspection.DoesNotExist:
            return None

    @property
    def inspection_warnings(self):
        """Where the declared precision or format contradicts what the file holds."""
        inspection = self.inspection_or_none
        return inspection.warnings_for(self) if inspection else []

    @classmethod
    def precision_order(cls, precision):
        """Position in the precision list (FP32 first), so variants sort from widest to narrowest."""
        values = cls.Precision.values
        return values.index(precision) if precision in values else len(values)

    @property
    def precision_rank(self):
        return self.precision_order(self.precision)

    def variant_order(self):
        """The order variants are listed in: widest precision first, then device and format."""
        return (self.precision_rank, self.target_device, self.format)

    @property
    def public_id(self):
        """The id clients of the Intel-compatible API see."""
        return self.external_id or str(self.id)

    @property
    def download_filename(self):
        return self.original_filename or f"{self.version.registered_model.name}-{self.version.version}.bin"

    def get_download_url(self):
        return reverse("api:artifact-download", kwargs={"pk": self.pk})


# Declared formats that name what the inspection detects (``format`` is free text).
FORMAT_SYNONYMS = {"openvino": {"openvino", "openvino-ir", "ir", "ov"}, "onnx": {"onnx"}}


class ArtifactInspection(models.Model):
    """What the artifact's file itself says it is: read in the background after registration
    (``models_app.inspection``), never executed or unpickled.

    One row per inspected artifact (none yet means pending). The columns lists and filters use are
    kept apart from ``details`` (operation counts, a zip's file list, rt_info...), which only an
    artifact's own page and API answer load.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"
        NOT_APPLICABLE = "not_applicable"

    artifact = models.OneToOneField(Artifact, primary_key=True, on_delete=models.CASCADE, related_name="inspection")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    reason = models.TextField(blank=True)
    inspected_at = models.DateTimeField(null=True, blank=True)
    # What the file is: openvino, onnx, pickle, or empty when unknown.
    format = models.CharField(max_length=32, blank=True, db_index=True)
    weight_precision = models.CharField(max_length=8, blank=True, db_index=True)
    ir_version = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    opset = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    parameter_count = models.BigIntegerField(null=True, blank=True)
    # The inputs' shapes as text ("1x3x224x224;1x?"), for the input-shape filter.
    input_shapes = models.CharField(max_length=500, blank=True)
    signature = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)

    # What lists load: everything but ``details``.
    LIGHT_FIELDS = (
        "status",
        "reason",
        "inspected_at",
        "format",
        "weight_precision",
        "ir_version",
        "opset",
        "parameter_count",
        "input_shapes",
        "signature",
    )

    def __str__(self):
        return f"inspection of {self.artifact_id} ({self.status})"

    def signature_text(self, side):
        """The ``inputs`` or ``outputs`` as one line (``x: f32[1,3,224,224]; mask: u8[?,?]``), for
        comparisons; empty when the file was not inspected successfully."""
        tensors = (self.signature or {}).get(side) or []
        return "; ".join(
            f"{t.get('name', '')}: {t.get('element_type', '')}[{','.join(str(d) for d in t.get('shape') or [])}]"
            for t in tensors
        )

    def warnings_for(self, artifact):
        """Where the artifact's declared precision or format contradicts its file.

        Computed when read, not stored: the declared fields can be changed after the inspection.
        """
        warnings = []
        declared_format = (artifact.format or "").lower()
        if self.format == "pickle" and any(declared_format in s for s in FORMAT_SYNONYMS.values()):
            warnings.append(f"Declared format {declared_format}, but the file is pickle-based.")
        elif self.format in FORMAT_SYNONYMS and declared_format not in FORMAT_SYNONYMS[self.format]:
            warnings.append(f"Declared format {declared_format}, but the file is {self.format}.")
        if (
            self.weight_precision
            and artifact.precision
            and artifact.precision != Artifact.Precision.MIXED
            and artifact.precision != self.weight_precision
        ):
            warnings.append(f"Declared precision {artifact.precision}, but the weights are {self.weight_precision}.")
        return warnings


# --- Lifecycle: aliases, their history, and the audit log -------------------------------------

ALIAS_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,63}$",
    "An alias is a slug: 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit.",
)


def normalize_alias_name(name):
    """The one spelling of an alias name: trimmed and lower-case, so " Production " is the
    alias "production" (protected ones included) on every face that writes or looks one up."""
    return str(name or "").strip().lower()


def protected_alias_names():
    """Alias names whose moves need the ``promote_alias`` permission (REGISTRY_PROTECTED_ALIASES)."""
    return {normalize_alias_name(name) for name in settings.REGISTRY_PROTECTED_ALIASES if name.strip()}


class Alias(models.Model):
    """A named pointer (``production``, ``staging``, ``edge-npu``) from a registered model to one of
    its versions, so deployments pull "production" instead of a version number.

    The version is RESTRICTed: a version an alias points at cannot be deleted on its own (move the
    alias first), yet deleting the whole registered model takes its aliases with it.
    """

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=64, validators=[ALIAS_NAME_VALIDATOR])
    version = models.ForeignKey(ModelVersion, on_delete=models.RESTRICT, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["registered_model__name", "name"]
        verbose_name_plural = "aliases"
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "name"], name="unique_alias_per_model"),
        ]
        permissions = [("promote_alias", "Can move protected aliases")]

    def __str__(self):
        return f"{self.registered_model.name}@{self.name}"

    @property
    def is_protected(self):
        return self.name in protected_alias_names()

    @staticmethod
    def permission_for(name):
        """The permission needed to set, move, roll back or delete the alias called ``name``
        (in any spelling)."""
        if normalize_alias_name(name) in protected_alias_names():
            return "models_app.promote_alias"
        return "models_app.change_alias"

    def clean_fields(self, exclude=None):
        # A form (the admin's) validates the name as typed; it is checked, and kept, in its one spelling.
        self.name = normalize_alias_name(self.name)
        super().clean_fields(exclude=exclude)

    def clean(self):
        if self.version_id and self.registered_model_id:
            try:
                self.version.check_alias_target(self.registered_model)
            except Conflict as exc:
                raise ValidationError({"version": str(exc)}) from exc


class AliasEvent(models.Model):
    """One change of an alias: kept when the alias moves again, is deleted, or its versions go.

    The version labels are copied so the history still reads right after a version is deleted.
    """

    class Action(models.TextChoices):
        SET = "set"
        MOVE = "move"
        ROLLBACK = "rollback"
        DELETE = "delete"

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_events")
    alias = models.CharField(max_length=64, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    from_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_version_label = models.CharField(max_length=100, blank=True)
    to_version_label = models.CharField(max_length=100, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.TextField(blank=True)

    class Meta:
        # id breaks ties between events written in the same clock tick.
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["registered_model", "alias", "-at"], name="alias_event_history")]

    def __str__(self):
        return (
            f"{self.registered_model_id}@{self.alias} {self.action} {self.from_version_label}->{self.to_version_label}"
        )


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit entries are append-only.")

    def delete(self):
        raise TypeError("Audit entries are append-only.")


class AuditEntry(models.Model):
    """One write to the registry: who, when, what, and the changed fields before and after.

    Append-only: a saved entry refuses to be saved again or deleted, and the API and admin
    offer no way to change one. Objects are named by type, id and text rather than a foreign
    key, so the entry outlives the object it describes.
    """

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        UPLOAD = "upload"
        IMPORT = "import"
        ALIAS_SET = "alias_set"
        ALIAS_MOVE = "alias_move"
        ALIAS_ROLLBACK = "alias_rollback"
        ALIAS_DELETE = "alias_delete"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    object_type = models.CharField(max_length=32, db_index=True)
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(max_length=300)
    registered_model = models.CharField(max_length=200, blank=True, db_index=True)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit entries are append-only.")


class Event(models.Model):
    """One change the registry announces to webhook subscribers: the outbox.

    Written by ``models_app.events`` in the same transaction as the change it describes, so an
    event exists exactly when its change committed. The webhooks app fans events out to its
    subscriptions (``dispatched_at``) and delivers them. Models are referred to by id and name
    rather than a foreign key, so the event outlives what it describes; the id orders the events.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    registered_model_id = models.UUIDField(null=True, blank=True, db_index=True)
    registered_model_name = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(dispatched_at__isnull=True), name="event_undispatched"),
        ]

    def __str__(self):
        return f"{self.type} {self.registered_model_name}".strip()


class UploadSession(models.Model):
    """A direct upload: the client sends a big file straight to S3 in parts through presigned
    URLs, then asks the registry to complete it. The registry verifies size and sha256 of what
    arrived before the artifact exists; a session left unfinished expires (``prune_uploads``)."""

    class State(models.TextChoices):
        PENDING = "pending"
        COMPLETING = "completing"
        COMPLETED = "completed"
        ABORTED = "aborted"
        FAILED = "failed"

    # Also the id of the artifact it creates, so its key is artifacts/<artifact id>/<name>.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    metadata = models.JSONField(default=dict, blank=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, blank=True, help_text="Expected sha256, when the client gave one.")
    # "CRC32" when the client sends each part with its CRC32 (the URL of a part is then signed
    # for that checksum, asked for once the client knows it); blank when it sends none.
    checksum_algorithm = models.CharField(max_length=16, blank=True)
    key = models.CharField(max_length=500)
    upload_id = models.CharField(max_length=1024, blank=True)
    part_size = models.BigIntegerField()
    artifact = models.ForeignKey(Artifact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # When it last changed state: how long a completion has been running (``prune_uploads``).
    moved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "expires_at"], name="uploadsession_state_expiry")]

    def __str__(self):
        return f"upload {self.id} ({self.state})"

    @property
    def part_count(self):
        return max(1, -(-self.size // self.part_size))

    def part_length(self, number):
        """The bytes part ``number`` (from 1) must hold: ``part_size``, the last part the rest."""
        return min(self.part_size, self.size - (number - 1) * self.part_size)

    def move(self, state, *, error=None, **fields):
        """Move the session to ``state`` (saving ``fields`` with it) if it is still in the state
        that move starts from, in one conditional UPDATE: of two writers racing to leave a state
        (a client completing, another aborting, ``prune_uploads`` on another host) exactly one
        wins, whatever each read before. The loser gets a Conflict (409) naming the state it
        found, and ``self.state`` is refreshed to it.

        A session leaves ``pending`` to be completed or aborted, and goes back to it when S3
        refused that step; it leaves ``completing`` by the hand of the completion that claimed it,
        or failed by ``prune_uploads`` once that completion has stalled.
        """
        moves_from = {
            self.State.COMPLETING: [self.State.PENDING],
            self.State.ABORTED: [self.State.PENDING],
            self.State.PENDING: [self.State.COMPLETING, self.State.ABORTED],
            self.State.COMPLETED: [self.State.COMPLETING],
            self.State.FAILED: [self.State.COMPLETING],
        }
        if error is not None:
            fields["error"] = error[:2000]
        fields["state"] = state
        fields["moved_at"] = timezone.now()
        if UploadSession.objects.filter(pk=self.pk, state__in=moves_from[state]).update(**fields):
            for name, value in fields.items():
                setattr(self, name, value)
            return
        found = UploadSession.objects.filter(pk=self.pk).values_list("state", flat=True).first()
        if found is None:
            raise Conflict("This upload no longer exists.")
        self.state = found
        verb = {self.State.COMPLETING: "completed", self.State.ABORTED: "aborted"}.get(state)
        if verb:
            raise Conflict(f"This upload is {found}; only a pending upload can be {verb}.")
        raise Conflict(f"This upload is {found}; it cannot become {state}.")


class BlobUpload(models.Model):
    """A blob pushed over the OCI distribution API (``/v2/``), before a manifest makes it a variant.

    Clients push each file first and the manifest that names them last, so a pushed blob waits in
    storage under ``artifacts/<id>/...`` (the id becomes the artifact's, as with direct uploads).
    A chunked upload keeps its chunks as separate objects until the last one arrives. Uploads that
    are never finished, and blobs no manifest claims, are removed by ``prune_uploads``.
    """

    class State(models.TextChoices):
        UPLOADING = "uploading"
        STORED = "stored"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repository = models.CharField(max_length=200, help_text="The registered model's name.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.UPLOADING)
    # Chunks received so far: [{"key", "offset", "size", "sha256"}], in order.
    chunks = models.JSONField(default=list, blank=True)
    offset = models.BigIntegerField(default=0)
    key = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["repository", "sha256"], name="blobupload_repo_digest"),
            models.Index(fields=["updated_at"], name="blobupload_updated"),
        ]

    def __str__(self):
        return f"blob upload {self.id} to {self.repository} ({self.state})"

    def take(self):
        """Delete this row if nobody touched it since it was read (its ``updated_at`` is a
        version). Whoever deletes it owns its objects: of a manifest registering a pushed blob
        and ``prune_uploads`` removing it as idle, exactly one gets True, whatever each read before.
        """
        return BlobUpload.objects.filter(pk=self.pk, updated_at=self.updated_at).delete()[0] > 0


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` for a create request and the answer it got, so a retry of
    the same request gets the same answer instead of creating the thing twice
    (models_app.api.idempotency). Unique per user: two requests with one key race for the row,
    and only the one that inserts it runs."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 of the method, path, query string and body (or, for a file upload, its size and type).
    fingerprint = models.CharField(max_length=64)
    # Empty while the first request runs.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    location = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotencykey_user_key")]

    def __str__(self):
        return f"{self.key} ({self.status_code or 'running'})"
