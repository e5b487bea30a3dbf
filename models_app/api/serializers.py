"""API representations. Validation rules live on the models (``clean``) and in services."""

import copy
from functools import cached_property

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.utils import validate_file_name
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import ManyRelatedField, PKOnlyObject, RelatedField

from ..lib.plans import attnames
from ..lib.validation import full_clean
from ..models import (
    ARTIFACT_FIELDS,
    VARIANT_DEFAULTS,
    VERSION_FIELDS,
    Alias,
    AliasEvent,
    Artifact,
    ArtifactInspection,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    UploadSession,
)
from .fields import DateTimeField, RouteLinkField, SlugRelatedField


class ModelSerializer(serializers.ModelSerializer):
    """Derives its fields from the model once per class instead of on every instance.

    DRF inspects the model, builds and checks every field for each serializer it makes; the
    outcome depends on the class alone. Each instance still gets fields of its own, because
    binding a field to its serializer changes it (``fresh_field``)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: DateTimeField,
    }

    def get_fields(self):
        prototypes = type(self).__dict__.get("_field_prototypes")
        if prototypes is None:
            prototypes = super().get_fields()
            type(self)._field_prototypes = prototypes
        return {name: fresh_field(field) for name, field in prototypes.items()}

    def to_representation(self, instance):
        """DRF's, with the model's own columns read straight off the instance.

        DRF looks every field up generically (mappings, callables, dotted sources), which costs
        more than writing a plain column, for every field of every row of a page. A field that is
        one of the model's own non-relation columns, with DRF's lookup, gets the attribute
        itself; every other field goes through DRF's lookup as before."""
        if not isinstance(instance, self.Meta.model):
            return super().to_representation(instance)
        out = {}
        for field, column in self._reads:
            if column is None:
                try:
                    attribute = field.get_attribute(instance)
                except SkipField:
                    continue
                value = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            else:
                attribute = value = getattr(instance, column)
            out[field.field_name] = None if value is None else field.to_representation(attribute)
        return out

    @cached_property
    def _reads(self):
        """(field, column or None) for each field written, in order; kept for every row."""
        columns = {f.attname for f in self.Meta.model._meta.concrete_fields if not f.is_relation}
        return [(field, field.source if self._is_column(field, columns) else None) for field in self._readable_fields]

    @staticmethod
    def _is_column(field, columns):
        return (
            field.source_attrs == [field.source]
            and field.source in columns
            and type(field).get_attribute is serializers.Field.get_attribute
            and not isinstance(field, serializers.BaseSerializer | RelatedField | ManyRelatedField)
        )


def fresh_field(prototype):
    """A field of its own for one serializer, from a prototype that is never bound.

    DRF deep-copies every field for every serializer, which builds each one again from deep
    copies of its arguments: a version's create paid more for it than for its validation.
    Binding sets attributes of the field itself (its name, parent, source), so a shallow copy is
    a field of its own; a field holding fields (a nested serializer, a list's child) is
    deep-copied as DRF copies it, since binding changes those too."""
    if isinstance(prototype, serializers.BaseSerializer | ManyRelatedField) or hasattr(prototype, "child"):
        return copy.deepcopy(prototype)
    return copy.copy(prototype)


class ValidatedModelSerializer(ModelSerializer):
    """Runs the model's own ``full_clean`` so the API and the admin enforce the same rules
    (NetBox's ValidatedModelSerializer). Uniqueness is left to the database constraints."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        # A copy: the instance keeps its stored values until a service saves the change (and
        # audits the difference).
        instance = copy.copy(self.instance) if self.instance else self.Meta.model()
        for key, value in attrs.items():
            setattr(instance, key, value)
        exclude = [f.name for f in self.Meta.model._meta.fields if f.name not in attrs and not self.instance]
        full_clean(instance, exclude)
        # clean() may normalise values (upper-case precision, ...): keep what it produced.
        return {key: getattr(instance, key) for key in attrs}


class RegisteredModelSerializer(ValidatedModelSerializer):
    url = RouteLinkField("api:registeredmodel-detail", lookup_field="name")
    version_count = serializers.IntegerField(read_only=True)
    latest_version_at = DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "url",
            "name",
            "description",
            "tags",
            "version_count",
            "latest_version_at",
            "created_at",
            "updated_at",
        ]
        # Uniqueness is checked by the database constraint (409), not by a racy pre-check.
        extra_kwargs = {"name": {"validators": []}}


class ModelVersionSerializer(ValidatedModelSerializer):
    registered_model = SlugRelatedField(slug_field="name", queryset=RegisteredModel.objects.all())
    created_by = serializers.StringRelatedField()
    artifact_count = serializers.IntegerField(read_only=True)
    total_size = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "registered_model",
            "version",
            "status",
            *VERSION_FIELDS,
            "derived_from",
            "artifact_count",
            "total_size",
            "created_by",
            "created_at",
            "updated_at",
        ]
        validators = []  # the (registered_model, version) constraint answers 409 in the database

    def validate_registered_model(self, value):
        if self.instance is not None and value != self.instance.registered_model:
            raise serializers.ValidationError("A version cannot move to another registered model.")
        return value


class TensorSerializer(serializers.Serializer):
    name = serializers.CharField()
    shape = serializers.ListField(
        child=serializers.JSONField(),
        allow_null=True,
        help_text='Dimensions: numbers, or names/"?" for dynamic ones; null when unknown.',
    )
    element_type = serializers.CharField(help_text="f32, f16, i8, u8, i64, ...")


class ArtifactInspectionSerializer(ModelSerializer):
    """What the file itself says it is (docs/inspection.md), as lists show it."""

    inputs = TensorSerializer(many=True, source="signature.inputs", default=list)
    outputs = TensorSerializer(many=True, source="signature.outputs", default=list)
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = ArtifactInspection
        extra_kwargs = {
            "status": {"help_text": "pending (queued or never inspected), done, failed (see reason), not_applicable"},
            "format": {"help_text": "What the file is: openvino, onnx or pickle (empty: unknown)."},
            "weight_precision": {"help_text": "The precision the weights are stored in, as found in the file."},
            "ir_version": {"help_text": "OpenVINO IR version, or the ONNX IR version."},
            "opset": {"help_text": "ONNX: the default domain's opset; OpenVINO: the newest opsetN its layers use."},
        }
        # What lists load, the signature as inputs and outputs, and the warnings.
        fields = [
            *(f for f in ArtifactInspection.LIGHT_FIELDS if f not in ("input_shapes", "signature")),
            "inputs",
            "outputs",
            "warnings",
        ]
        read_only_fields = fields

    def get_warnings(self, obj) -> list[str]:
        return obj.warnings_for(self.context["artifact"])


class ArtifactInspectionDetailSerializer(ArtifactInspectionSerializer):
    """An artifact's own answer adds ``details``: operation counts, a zip's files, rt_info, opset
    imports, external data... (lists leave it out, and do not load it)."""

    details = serializers.JSONField(
        read_only=True,
        help_text="Only in an artifact's own answer, not in lists: op_counts, producer, weight_elements, "
        "quantize_ops, input_count, output_count, rt_info (IR) or opset_imports and external_data (ONNX), "
        "and for a zip its file_count, files (name, size) and model_file.",
    )

    class Meta(ArtifactInspectionSerializer.Meta):
        fields = [*ArtifactInspectionSerializer.Meta.fields, "details"]
        read_only_fields = fields


PENDING_INSPECTION = ArtifactInspection(status=ArtifactInspection.Status.PENDING)


class InspectionField(serializers.SerializerMethodField):
    """An artifact's inspection, as its nested serializer writes it (with ``details`` where they
    were loaded), or the pending answer before one has run; the serializer's ``get_inspection``
    gives it the artifact.

    An answer written from columns (models_app/api/prepared.py) gives the field its ``columns``
    instead, and ``from_columns`` rebuilds the inspection from them as ``ArtifactQuerySet.for_list``
    loads it (or whole, details included, where ``details`` is set: one artifact, as ``resolve``
    shows it): both go through ``represent``."""

    # from_db takes values in the order of the model's fields.
    LIGHT = attnames(ArtifactInspection, ArtifactInspection.LIGHT_FIELDS)
    WHOLE = attnames(ArtifactInspection, (*ArtifactInspection.LIGHT_FIELDS, "details"))
    # What the warnings compare the file with.
    DECLARED = attnames(Artifact, ("format", "precision"))
    details = False

    @property
    def loaded(self):
        return self.WHOLE if self.details else self.LIGHT

    @property
    def columns(self):
        return (*(f"inspection__{name}" for name in self.loaded), *self.DECLARED)

    def from_columns(self, values, origin):
        names = self.loaded
        loaded, declared = values[: len(names)], values[len(names) :]
        # The status is never null in a row: null here means the artifact has none yet.
        found = loaded[names.index("status")] is not None
        inspection = ArtifactInspection.from_db(None, names, loaded) if found else None
        return self.represent(inspection, Artifact.from_db(None, self.DECLARED, declared))

    def represent(self, inspection, artifact):
        inspection = inspection or PENDING_INSPECTION
        serializer = self._serializer(detail="details" not in inspection.get_deferred_fields())
        serializer.context["artifact"] = artifact
        return serializer.to_representation(inspection)

    def _serializer(self, *, detail):
        """One nested serializer per response, reused for every row of a list: a ModelSerializer
        builds its fields when first used, which costs more than writing the row itself."""
        made = self.__dict__.setdefault("_serializers", {})
        if detail not in made:
            made[detail] = (ArtifactInspectionDetailSerializer if detail else ArtifactInspectionSerializer)(context={})
        return made[detail]


class ArtifactSerializer(ValidatedModelSerializer):
    registered_model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version = serializers.CharField(source="version.version", read_only=True)
    version_id = serializers.UUIDField(read_only=True)
    # Plain text here: the model normalises case ("int8" -> "INT8") and explains a bad value.
    precision = serializers.CharField(max_length=8, required=False)
    download_url = RouteLinkField("api:artifact-download")
    created_by = serializers.StringRelatedField()
    inspection = InspectionField()

    class Meta:
        model = Artifact
        fields = [
            "id",
            "registered_model",
            "version",
            "version_id",
            *ARTIFACT_FIELDS,
            "size",
            "sha256",
            "original_filename",
            "content_type",
            "download_url",
            "inspection",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["external_id", "size", "sha256", "original_filename", "content_type"]
        validators = []

    @extend_schema_field(ArtifactInspectionDetailSerializer)
    def get_inspection(self, artifact):
        return self.fields["inspection"].represent(artifact.inspection_or_none, artifact)


class ArtifactUploadSerializer(serializers.Serializer):
    """Multipart registration of one model file with its metadata.

    The registered model and version are created when they do not exist yet; version-level
    fields only apply to a version created by this request.
    """

    file = serializers.FileField(allow_empty_file=True, use_url=False)
    registered_model = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=100)
    # artifact (variant) fields
    precision = serializers.CharField(max_length=8, default=VARIANT_DEFAULTS["precision"])
    target_device = serializers.CharField(max_length=64, default=VARIANT_DEFAULTS["target_device"])
    target_device_type = serializers.CharField(max_length=64, required=False, allow_blank=True)
    format = serializers.CharField(max_length=32, default=VARIANT_DEFAULTS["format"])
    score = serializers.FloatField(required=False, allow_null=True)
    optimization_capabilities = serializers.JSONField(required=False)
    derived_from = serializers.PrimaryKeyRelatedField(queryset=Artifact.objects.all(), required=False, allow_null=True)
    # version fields
    description = serializers.CharField(required=False, allow_blank=True)
    architecture = serializers.CharField(max_length=200, required=False, allow_blank=True)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    labels = serializers.JSONField(required=False)
    score_metric = serializers.CharField(max_length=64, required=False, allow_blank=True)
    overview = serializers.JSONField(required=False)
    project_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    project_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    origin = serializers.CharField(max_length=64, required=False, allow_blank=True)
    tags = serializers.JSONField(required=False)
    provenance = serializers.JSONField(required=False)

    # external_id is chosen by Intel clients and taken from Geti, not set through this API.
    ARTIFACT_FIELDS = tuple(name for name in ARTIFACT_FIELDS if name != "external_id")
    VERSION_FIELDS = VERSION_FIELDS

    def split(self):
        data = self.validated_data
        return (
            {k: data[k] for k in self.VERSION_FIELDS if k in data},
            {k: data[k] for k in self.ARTIFACT_FIELDS if k in data},
        )


class RawUploadQuerySerializer(ArtifactUploadSerializer):
    """The query string of a raw-body upload: the multipart form's fields, less the file."""

    file = None


class AliasSerializer(ModelSerializer):
    registered_model = serializers.CharField(source="registered_model.name", read_only=True)
    version = serializers.CharField(source="version.version", read_only=True)
    version_id = serializers.UUIDField(read_only=True)
    version_status = serializers.CharField(source="version.status", read_only=True)
    protected = serializers.BooleanField(source="is_protected", read_only=True)
    updated_by = serializers.StringRelatedField()

    class Meta:
        model = Alias
        fields = [
            "name",
            "registered_model",
            "version",
            "version_id",
            "version_status",
            "protected",
            "updated_by",
            "updated_at",
        ]


class AliasWriteSerializer(serializers.Serializer):
    """Where an alias should point: a version label (``"3"``) or a version id, and why."""

    name = serializers.CharField(
        max_length=64, required=False, help_text="Alias name; only when POSTing to the alias collection."
    )
    version = serializers.CharField(max_length=100, required=False, help_text="Version label, e.g. 3")
    version_id = serializers.UUIDField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, attrs):
        if ("version" in attrs) == ("version_id" in attrs):
            raise serializers.ValidationError("Give exactly one of version or version_id.")
        return attrs

    def target(self, registered_model):
        data = self.validated_data
        lookup = {"version": data["version"]} if "version" in data else {"pk": data["version_id"]}
        version = registered_model.versions.filter(**lookup).first()
        if version is None:
            raise serializers.ValidationError(
                {
                    "version": [
                        f"{registered_model.name} has no version {data.get('version') or data.get('version_id')}."
                    ]
                }
            )
        return version


class AliasReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AliasEventSerializer(ModelSerializer):
    from_version = serializers.CharField(source="from_version_label")
    to_version = serializers.CharField(source="to_version_label")
    user = serializers.StringRelatedField()

    class Meta:
        model = AliasEvent
        fields = [
            "id",
            "alias",
            "action",
            "from_version",
            "from_version_id",
            "to_version",
            "to_version_id",
            "user",
            "at",
            "reason",
        ]


class AuditEntrySerializer(ModelSerializer):
    actor = serializers.CharField(source="actor_name")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "registered_model",
            "changes",
        ]
        read_only_fields = fields


class ResolveQuerySerializer(serializers.Serializer):
    """Constraints for picking a variant; precision is a comma-separated preference order."""

    alias = serializers.CharField(required=False, max_length=64)
    version = serializers.CharField(required=False, max_length=100)
    target_device = serializers.CharField(required=False, max_length=64)
    precision = serializers.CharField(
        required=False, max_length=200, help_text="Acceptable precisions, best first: INT8,FP16,FP32"
    )
    format = serializers.CharField(required=False, max_length=32)
    max_size = serializers.IntegerField(required=False, min_value=0, help_text="Bytes")

    def constraints(self):
        data = dict(self.validated_data)
        precision = data.pop("precision", "")
        data["precisions"] = [p for p in precision.split(",") if p.strip()]
        return data


class ResolveSerializer(serializers.Serializer):
    registered_model = serializers.CharField()
    alias = serializers.CharField(allow_null=True)
    version = serializers.CharField()
    version_id = serializers.UUIDField()
    version_status = serializers.CharField()
    artifact = ArtifactSerializer()
    download_url = serializers.CharField()


def resolve_answer(registered_model, alias, version, version_id, version_status, artifact):
    """What ``resolve`` answers (ResolveSerializer's shape), from the names and the artifact's
    JSON: written once for its general and its prepared path."""
    return {
        "registered_model": registered_model,
        "alias": alias,
        "version": version,
        "version_id": version_id,
        "version_status": version_status,
        "artifact": artifact,
        "download_url": artifact["download_url"],
    }


SHA256_HEX = r"^[0-9a-fA-F]{64}$"


class DirectUploadSerializer(ArtifactUploadSerializer):
    """Start a direct upload: the metadata of a registration, the file's name and size, and
    optionally its sha256 (checked against what arrives)."""

    file = None
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1)
    sha256 = serializers.RegexField(SHA256_HEX, required=False, allow_blank=True)
    content_type = serializers.CharField(max_length=100, required=False, allow_blank=True)
    checksum_algorithm = serializers.ChoiceField(
        choices=["CRC32"],
        required=False,
        allow_blank=True,
        help_text="`CRC32` to send each part with its CRC32 (`x-amz-checksum-crc32`), which S3 checks as "
        "the part arrives. The part URLs then come from `POST /uploads/{id}/part-urls/`, signed for each "
        "part's checksum; the session's `parts` have no `url`.",
    )

    def validate_filename(self, value):
        try:
            validate_file_name(value)
        except SuspiciousFileOperation:
            raise serializers.ValidationError("Not a usable file name.") from None
        return value


class UploadSessionSerializer(ModelSerializer):
    registered_model = serializers.CharField(source="metadata.registered_model", read_only=True)
    version = serializers.CharField(source="metadata.version", read_only=True)
    part_count = serializers.IntegerField(read_only=True)
    artifact = serializers.UUIDField(source="artifact_id", read_only=True, allow_null=True)

    class Meta:
        model = UploadSession
        fields = [
            "id",
            "state",
            "registered_model",
            "version",
            "filename",
            "size",
            "sha256",
            "checksum_algorithm",
            "part_size",
            "part_count",
            "artifact",
            "error",
            "created_at",
            "expires_at",
        ]
        read_only_fields = fields


CRC32_BASE64 = r"^[A-Za-z0-9+/]{6}==$"


class UploadPartURLSerializer(serializers.Serializer):
    part_number = serializers.IntegerField()
    size = serializers.IntegerField(help_text="The part's length in bytes: its URL is signed for this Content-Length.")
    url = serializers.URLField(
        allow_null=True,
        help_text="Presigned S3 URL to PUT the part to; null in a session with part checksums, "
        "whose URLs `POST /uploads/{id}/part-urls/` gives.",
    )


class SignedPartURLSerializer(UploadPartURLSerializer):
    checksum_crc32 = serializers.CharField(
        help_text="The checksum the URL is signed for: send it as the `x-amz-checksum-crc32` header of the PUT."
    )


class PartChecksumSerializer(serializers.Serializer):
    part_number = serializers.IntegerField(min_value=1, max_value=10_000)
    checksum_crc32 = serializers.RegexField(
        CRC32_BASE64, help_text="The part's CRC32: its 4 bytes, big-endian, in base64 (as S3 writes it)."
    )


class PartURLsRequestSerializer(serializers.Serializer):
    parts = PartChecksumSerializer(many=True, allow_empty=False, max_length=10_000)


class PartURLsSerializer(serializers.Serializer):
    parts = SignedPartURLSerializer(many=True)


class StartedUploadSerializer(UploadSessionSerializer):
    """A new direct upload as ``POST /uploads/`` answers it: the session, where to PUT each part,
    and where to complete it (documents the answer; the view builds it)."""

    parts = UploadPartURLSerializer(many=True, read_only=True)
    complete_url = serializers.URLField(read_only=True)

    class Meta(UploadSessionSerializer.Meta):
        fields = [*UploadSessionSerializer.Meta.fields, "parts", "complete_url"]
        read_only_fields = fields


class UploadPartSerializer(serializers.Serializer):
    part_number = serializers.IntegerField(min_value=1, max_value=10_000)
    etag = serializers.CharField(max_length=200)
    checksum_crc32 = serializers.RegexField(
        CRC32_BASE64, required=False, help_text="The part's CRC32, in a session with part checksums."
    )


class ReceivedPartSerializer(serializers.Serializer):
    part_number = serializers.IntegerField()
    size = serializers.IntegerField(help_text="Bytes S3 holds for this part.")
    etag = serializers.CharField(help_text="The part's ETag, as `complete` expects it.")
    checksum_crc32 = serializers.CharField(
        allow_null=True,
        help_text="The part's CRC32 as S3 lists it, in a session with part checksums; null when S3 lists none.",
    )


class ReceivedPartsSerializer(serializers.Serializer):
    parts = ReceivedPartSerializer(many=True, help_text="Every part S3 has received, by part number.")


class CompleteUploadSerializer(serializers.Serializer):
    parts = UploadPartSerializer(many=True, allow_empty=False)
    sha256 = serializers.RegexField(
        SHA256_HEX,
        required=False,
        allow_blank=True,
        help_text="The file's sha256, when the client knows it only now: compared with the one the "
        "registry computes from what arrived.",
    )
