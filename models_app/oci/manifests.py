"""How registered models look over the OCI distribution API (docs/oci.md has the full mapping).

- Repository ``models/<name>`` per registered model (names that are valid OCI path components).
- A variant (artifact) is an OCI image manifest with ``artifactType`` ARTIFACT_TYPE, a config blob
  holding the registry's metadata as JSON, and one layer: the model file.
- A version is an image index of its variants' manifests; an alias is the index of its version.
- Tags: each version label and alias, and per variant ``<tag>-<precision>-<device>-<format>``,
  plus ``<tag>-<precision>-<device>`` for the variant of that pair registered first.

Every document is built from the rows alone, serialised with sorted keys and compact separators
and without volatile fields, so the same rows give the same bytes, and digest, on every request
and every replica.
"""

import hashlib
import json
import re
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.db.models import F, Prefetch, Q
from django.db.models.functions import Collate

from ..models import Artifact, ModelVersion, RegisteredModel
from .errors import OCIError

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
ARTIFACT_TYPE = "application/vnd.model-registry.model.v1"
CONFIG_TYPE = "application/vnd.model-registry.model.config.v1+json"
DEFAULT_LAYER_TYPE = "application/octet-stream"
REPOSITORY_PREFIX = "models/"

TITLE = "org.opencontainers.image.title"
OCI_VERSION = "org.opencontainers.image.version"
OCI_CREATED = "org.opencontainers.image.created"
ANNOTATION = "org.model-registry."
# Registry fields a pushed manifest may set through annotations, by annotation name.
ARTIFACT_ANNOTATIONS = {
    "precision": "precision",
    "target-device": "target_device",
    "target-device-type": "target_device_type",
    "format": "format",
    "score": "score",
}
VERSION_ANNOTATIONS = {
    "labels": "labels",
    "architecture": "architecture",
    "category": "category",
    "description": "description",
}

# The distribution spec's grammar for a path component and a tag.
COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_CACHE_SECONDS = 24 * 3600


GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def canonical(document):
    """The one serialisation of a manifest or index: compact, fields in the image-spec's order,
    annotations sorted, strings escaped as Go's encoding/json escapes them.

    That is byte for byte what Go tools (skopeo, containers/image) write when they re-serialise a
    document they copy, so a copied index keeps the digest the registry gave it.
    """
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).translate(GO_ESCAPES).encode()


def _sorted(mapping):
    return dict(sorted(mapping.items()))


def _sorted_json(value):
    """The config blob's serialisation: the registry's own JSON, keys sorted at every level."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Document:
    """A manifest, index or config blob as served: its media type, exact bytes and digest."""

    media_type: str
    data: bytes

    @property
    def digest(self):
        return sha256_digest(self.data)

    def descriptor(self, annotations=None):
        """The descriptor of the document, fields in the image-spec's order."""
        described = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if annotations:
            described["annotations"] = _sorted(annotations)
        return described


def repository_of(model_name):
    return REPOSITORY_PREFIX + model_name


def model_name_of(repository):
    """The registered model's name behind ``models/<name>``; NAME_INVALID for other names."""
    name = repository[len(REPOSITORY_PREFIX) :] if repository.startswith(REPOSITORY_PREFIX) else ""
    if not COMPONENT.fullmatch(name):
        raise OCIError(
            "NAME_INVALID",
            f"{repository} is not a repository of this registry: models are served as "
            "models/<name>, for names of lower-case letters, digits and . _ - separators.",
        )
    return name


def find_model(repository):
    name = model_name_of(repository)
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        raise OCIError("NAME_UNKNOWN", f"There is no registered model {name}.", {"name": repository})
    return model


def _label_names(labels):
    return [str(label.get("name", label)) if isinstance(label, dict) else str(label) for label in labels or []]


def _variant_annotations(artifact):
    annotations = {
        ANNOTATION + "precision": artifact.precision,
        ANNOTATION + "target-device": artifact.target_device,
        ANNOTATION + "format": artifact.format,
    }
    if artifact.target_device_type:
        annotations[ANNOTATION + "target-device-type"] = artifact.target_device_type
    if artifact.score is not None:
        annotations[ANNOTATION + "score"] = repr(artifact.score)
    return annotations


def config_blob(artifact, version, model):
    """The registry's metadata of a variant and its version, as the manifest's config blob."""
    return Document(
        CONFIG_TYPE,
        _sorted_json(
            {
                "registered_model": model.name,
                "version": version.version,
                "artifact_id": str(artifact.id),
                "precision": artifact.precision,
                "target_device": artifact.target_device,
                "target_device_type": artifact.target_device_type,
                "format": artifact.format,
                "score": artifact.score,
                "size": artifact.size,
                "sha256": artifact.sha256,
                "filename": artifact.download_filename,
                "optimization_capabilities": artifact.optimization_capabilities,
                "created_at": artifact.created_at.isoformat(),
                "description": version.description,
                "architecture": version.architecture,
                "category": version.category,
                "labels": version.labels,
                "origin": version.origin,
                "project_id": version.project_id,
                "project_name": version.project_name,
                "tags": version.tags,
                "provenance": version.provenance,
            }
        ),
    )


def variant_manifest(artifact, version, model):
    """A variant as an OCI artifact manifest: the config blob and the model file as one layer."""
    annotations = {
        **_variant_annotations(artifact),
        ANNOTATION + "registered-model": model.name,
        ANNOTATION + "version": version.version,
        ANNOTATION + "labels": json.dumps(_label_names(version.labels), separators=(",", ":")),
        OCI_VERSION: version.version,
        OCI_CREATED: artifact.created_at.isoformat(),
    }
    layer = {
        "mediaType": artifact.content_type if "/" in artifact.content_type else DEFAULT_LAYER_TYPE,
        "digest": "sha256:" + artifact.sha256,
        "size": artifact.size,
        "annotations": {TITLE: artifact.download_filename},
    }
    return Document(
        MANIFEST,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": ARTIFACT_TYPE,
                "config": config_blob(artifact, version, model).descriptor(),
                "layers": [layer],
                "annotations": _sorted(annotations),
            }
        ),
    )


def version_index(version, model):
    """A version as an image index of its variants' manifests, each described by its precision,
    device and format annotations so a client can pick one without fetching them all."""
    manifests = [
        variant_manifest(artifact, version, model).descriptor(annotations=_variant_annotations(artifact))
        for artifact in version.variants
    ]
    return Document(
        INDEX,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": INDEX,
                "manifests": manifests,
                "annotations": _sorted(
                    {
                        ANNOTATION + "registered-model": model.name,
                        ANNOTATION + "version": version.version,
                        OCI_VERSION: version.version,
                    }
                ),
            }
        ),
    )


def _tag_part(value):
    return re.sub(r"[^a-z0-9._-]", "_", value.lower())


def variant_tags(base, artifacts):
    """``{tag: artifact}`` of one version's variants under the tag ``base`` (a version or alias).

    The short ``<base>-<precision>-<device>`` tag goes to the variant of that pair registered
    first, so adding another format later never moves it; the long tag with the format is there
    for every variant.
    """
    tags = {}
    for artifact in sorted(artifacts, key=lambda a: (a.created_at, str(a.id))):
        pair = f"{base}-{_tag_part(artifact.precision)}-{_tag_part(artifact.target_device)}"
        tags.setdefault(pair, artifact)
        tags.setdefault(f"{pair}-{_tag_part(artifact.format)}", artifact)
    return {tag: artifact for tag, artifact in tags.items() if TAG.fullmatch(tag)}


def _versions(model, *conditions):
    return list(
        model.versions.filter(*conditions)
        .order_by("created_at", "id")
        .prefetch_related(Prefetch("artifacts", queryset=Artifact.objects.order_by()))
    )


def _aliases(model, **filters):
    return list(model.aliases.filter(**filters).order_by("name"))


def tag_map(model, versions=None, aliases=None):
    """Every tag of a repository: ``{tag: version or artifact}``.

    Where two names meet, a version label wins over an alias, and both over a variant tag.
    """
    versions = _versions(model) if versions is None else versions
    aliases = _aliases(model) if aliases is None else aliases
    by_id = {v.pk: v for v in versions}
    tags = {}
    for version in versions:
        if TAG.fullmatch(version.version):
            tags.setdefault(version.version, version)
    for alias in aliases:
        if alias.version_id in by_id:
            tags.setdefault(alias.name, by_id[alias.version_id])
    named = [(v.version, v) for v in versions] + [(a.name, by_id.get(a.version_id)) for a in aliases]
    for base, version in named:
        if version is not None and TAG.fullmatch(base):
            for tag, artifact in variant_tags(base, version.artifacts.all()).items():
                tags.setdefault(tag, artifact)
    return tags


def resolve_tag(model, tag):
    """The version or artifact a tag names, reading only the versions the tag can be about."""
    if not TAG.fullmatch(tag):
        raise OCIError("MANIFEST_UNKNOWN", f"{tag} is not a valid tag.", {"tag": tag})
    # A variant tag starts with the version or alias it belongs to: every "-" is a possible end.
    bases = {tag} | {tag[:i] for i, c in enumerate(tag) if c == "-"}
    aliases = _aliases(model, name__in=bases)
    named = Q(version__in=bases) | Q(pk__in=model.aliases.filter(name__in=bases).values("version_id"))
    found = tag_map(model, _versions(model, named), aliases).get(tag)
    if found is None:
        raise OCIError("MANIFEST_UNKNOWN", f"models/{model.name} has no tag {tag}.", {"tag": tag})
    return found


def _attach(version, model):
    version.registered_model = model
    for artifact in version.artifacts.all():
        artifact.version = version
    return version


def document_for(model, found):
    """The manifest (an artifact) or index (a version) served for a resolved reference.

    The digests a client asks for next (an index's entries, a manifest's config blob) are
    remembered with the row they come from, so those requests need not search the repository.
    """
    if isinstance(found, ModelVersion):
        _attach(found, model)
        document = version_index(found, model)
        remembered = {document.digest: ("version", str(found.pk))}
        artifacts = found.artifacts.all()
    else:
        document = variant_manifest(found, found.version, model)
        remembered = {}
        artifacts = [found]
    for artifact in artifacts:
        for served in _documents_of(model, artifact):
            remembered[served.digest] = ("artifact", str(artifact.pk))
    cache.set_many({_digest_key(model, d): where for d, where in remembered.items()}, DIGEST_CACHE_SECONDS)
    return document


def _digest_key(model, digest):
    return f"oci:{model.pk}:{digest}"


def _load(model, kind, pk):
    if kind == "version":
        version = model.versions.filter(pk=pk).prefetch_related("artifacts").first()
        return version and _attach(version, model)
    artifact = Artifact.objects.filter(pk=pk, version__registered_model=model).select_related("version").first()
    if artifact is not None:
        artifact.version.registered_model = model
    return artifact


def documents_by_digest(model, digest):
    """The manifest, index or config blob of ``model`` whose digest is ``digest``, or None.

    Digests are not stored: each served document remembers, in the cache, which row it was built
    from, and is rebuilt and checked from there; a miss (another replica served it, or the cache
    was cleared) builds the repository's documents once to find it.
    """
    remembered = cache.get(_digest_key(model, digest))
    if remembered:
        found = _load(model, *remembered)
        if found is not None:
            for document in _documents_of(model, found):
                if document.digest == digest:
                    return document
    for version in _versions(model):
        _attach(version, model)
        for found in (version, *version.artifacts.all()):
            for document in _documents_of(model, found):
                if document.digest == digest:
                    kind = "version" if found is version else "artifact"
                    cache.set(_digest_key(model, digest), (kind, str(found.pk)), DIGEST_CACHE_SECONDS)
                    return document
    return None


def _documents_of(model, found):
    if isinstance(found, ModelVersion):
        return [version_index(found, model)]
    return [variant_manifest(found, found.version, model), config_blob(found, found.version, model)]


def catalogue(last=None, n=None):
    """Repository names in lexical (byte) order after ``last``, at most ``n`` (all without
    ``n``), and whether more follow. Models whose names are not valid repository names are left
    out."""
    # PostgreSQL sorts by the database's collation, which skips punctuation; "C" is byte order.
    key = Collate("name", "C") if connection.vendor == "postgresql" else F("name")
    names = RegisteredModel.objects.filter(name__regex=r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$").annotate(key=key)
    if last:
        names = names.filter(key__gt=last.removeprefix(REPOSITORY_PREFIX))
    names = names.order_by("key").values_list("name", flat=True)
    if n is None:
        return [repository_of(name) for name in names], False
    page = list(names[: n + 1])
    return [repository_of(name) for name in page[:n]], len(page) > n
