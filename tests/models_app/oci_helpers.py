"""Shared set-up of the OCI distribution API tests: variants registered through the services
(stored in the moto S3 bucket), and a requests session on the live server."""

import hashlib
import json

import requests
from django.core.files.base import ContentFile

from models_app import services

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = f"{MANIFEST}, {INDEX}"


def register(content, *, model="person-detection", version="2.0", filename="model.xml", user=None, **fields):
    """Register one variant (precision, target_device, format, score...) with ``content`` as its file."""
    version_fields = {key: fields.pop(key) for key in ("labels", "architecture", "category") if key in fields}
    return services.register_artifact(
        model_name=model,
        version=version,
        fileobj=ContentFile(content, name=filename),
        user=user,
        artifact_fields=fields,
        version_fields=version_fields,
        filename=filename,
        content_type="application/xml" if filename.endswith(".xml") else "application/octet-stream",
    )


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_errors(response):
    assert response.headers["Content-Type"] == "application/json", response.text
    return [error["code"] for error in response.json()["errors"]]


class Registry(requests.Session):
    """requests on the live server, with paths relative to its root."""

    def __init__(self, base_url):
        super().__init__()
        self.base_url = base_url
        self.host = base_url.split("://", 1)[1]

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.base_url + url, *args, **kwargs)

    def manifest(self, repository, reference, method="GET"):
        return self.request(method, f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT})

    def put_manifest(self, repository, reference, content, annotations=None, title=None):
        """PUT the manifest of a variant whose one layer is ``content`` (pushed or not)."""
        layer = {"mediaType": "application/octet-stream", "digest": sha256(content), "size": len(content)}
        if title:
            layer["annotations"] = {"org.opencontainers.image.title": title}
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
            "layers": [layer],
        }
        if annotations:
            manifest["annotations"] = annotations
        return self.put(
            f"/v2/{repository}/manifests/{reference}", data=json.dumps(manifest), headers={"Content-Type": MANIFEST}
        )
