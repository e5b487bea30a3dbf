"""A fake Intel Geti server for tests: real HTTP on loopback, following Geti's REST API (v1, Geti 2.x).

The client's real ``requests`` code runs against it, so retries, streaming, TLS and error parsing
are exercised for real. Usage::

    with FakeGeti() as geti:                 # or fake = FakeGeti(); fake.start(); ...; fake.stop()
        config = GetiConfig(host=geti.url, token=geti.token)

Canned data (ids are module constants below; every id is 24-hex, made by ``oid(n)``):

- ``WIDGETS`` "Widgets", detection. Group ``WIDGETS_GROUP`` (YOLOX-TINY), model ``WIDGETS_MODEL``
  (v1, active, score 0.91) with OpenVINO FP16/INT8/FP32/FP32+XAI and ONNX optimized models.
  Group ``PURGED_GROUP`` (ATSS) holds ``PURGED_MODEL``, whose weights were purged (exports: 422).
- ``CELLS`` "Cells", instance_segmentation, MaskRCNN with OpenVINO FP32/FP16/INT8 and ONNX.
  A code deployment that includes ``CELLS_INT8`` ends FAILED (see ``failing_deployment_models``).
- ``SCRATCHES`` "Scratches", anomaly, PADIM whose scores are only ``local_score``/``global_score``.
- ``PARKING`` "Parking", task chain detection -> crop -> classification, one group per task.
- ``project_count=N`` pads the list with empty detection projects "Filler 0005"... up to N.

Downloads are zips generated on the fly: a model's binary member (``openvino.bin``, ``model.onnx``,
``weights.pth``, ``model.bin``) has exactly the model's ``size`` in bytes of deterministic data, so
``set_size(id, 300 << 20)`` gives a 300 MB download without holding it in memory. Zips are STORED
(no compression) and written with data descriptors, as a streaming writer must. ``export_digest`` and
friends tell what a route will serve (size, sha256).

Scenarios: ``fail_next(503, times=2)``, ``fail_next(429, retry_after=3)``, ``queue_response(...)``
for anything else (an HTML login page, broken JSON); a wrong token gets Envoy's plain-text 401;
``deployment_polls`` sets how long deployments stay PREPARING; ``model_groups_shape`` mimics old
servers; ``hold_downloads`` keeps downloads waiting. Every request is recorded in ``requests``
(method, path, query, headers, body).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
import re
import shutil
import ssl
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tests.conftest import write_zip


def oid(n: int) -> str:
    """A 24-hex ObjectId-like id, as Geti's ids are; oid(1) == "6650a0000000000000000001"."""
    return f"6650a0{n:018x}"


ORG_ID = "4f1c2b9e-8a43-4c1e-9d6a-1f2e3d4c5b6a"
WORKSPACE_ID = "1d5e0e9c-7b2a-4f6e-8c3d-2a1b0c9d8e7f"
TOKEN = "geti_pat_" + "FakeGeti0123456789abcdefghijklmnopqrstuvwxyz"[:43] + "_0a1B2c"
CREATOR = "a5f3b2c1-0000-4000-8000-000000000001"

WIDGETS, CELLS, SCRATCHES, PARKING = oid(0x1), oid(0x2), oid(0x3), oid(0x4)
WIDGETS_GROUP, WIDGETS_MODEL = oid(0x100), oid(0x200)
WIDGETS_FP16, WIDGETS_INT8, WIDGETS_FP32, WIDGETS_FP32_XAI, WIDGETS_ONNX = (
    oid(0x301),
    oid(0x302),
    oid(0x303),
    oid(0x304),
    oid(0x305),
)
PURGED_GROUP, PURGED_MODEL, PURGED_FP16 = oid(0x101), oid(0x201), oid(0x306)
CELLS_GROUP, CELLS_MODEL = oid(0x110), oid(0x210)
CELLS_FP32, CELLS_FP16, CELLS_INT8, CELLS_ONNX = oid(0x311), oid(0x312), oid(0x313), oid(0x314)
SCRATCHES_GROUP, SCRATCHES_MODEL = oid(0x120), oid(0x220)
SCRATCHES_FP32, SCRATCHES_FP16, SCRATCHES_ONNX = oid(0x321), oid(0x322), oid(0x323)
PARKING_DETECTION_GROUP, PARKING_DETECTION_MODEL, PARKING_DETECTION_FP16 = oid(0x130), oid(0x230), oid(0x331)
PARKING_CLASSIFICATION_GROUP, PARKING_CLASSIFICATION_MODEL, PARKING_CLASSIFICATION_FP16 = (
    oid(0x131),
    oid(0x231),
    oid(0x332),
)

_ID = re.compile(r"^[0-9a-f]{24}$")
_CHUNK = 256 * 1024

# Generated payloads are slices of one random megabyte at offsets that depend on the seed and the
# chunk number: deterministic, cheap, and not a repeating pattern within a chunk.
_BLOCK = random.Random(20250603).randbytes(1 << 20)
_DOUBLE = _BLOCK + _BLOCK


@dataclass(frozen=True)
class Generated:
    """``size`` deterministic bytes derived from ``seed``, produced chunk by chunk."""

    seed: str
    size: int

    def chunks(self) -> Iterator[bytes]:
        start = zlib.crc32(self.seed.encode())
        done = index = 0
        while done < self.size:
            n = min(_CHUNK, self.size - done)
            offset = (start + index * 7919) % len(_BLOCK)
            yield _DOUBLE[offset : offset + n]
            done += n
            index += 1


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


def zip_digest(members) -> Digest:
    """Size and sha256 of the zip ``write_zip`` produces, computed without keeping it."""
    sha = hashlib.sha256()
    size = 0

    def sink(data):
        nonlocal size
        sha.update(data)
        size += len(data)

    write_zip(members, sink)
    return Digest(size, sha.hexdigest())


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _ZipReply:
    filename: str
    key: tuple  # cache key of the digest; includes everything the bytes depend on
    members: list


def _json_reply(data, status=200) -> _Reply:
    return _Reply(status, json.dumps(data).encode())


def _error(status: int, code: str, message: str) -> _Reply:
    return _json_reply({"http_status": status, "message": message, "error_code": code}, status)


class _NotFound(Exception):
    def __init__(self, reply: _Reply):
        self.reply = reply


# --- canned data builders -------------------------------------------------------------------------


def _label(n, name, color, group, *, empty=False, anomalous=False, hotkey=""):
    return {
        "id": oid(n),
        "name": name,
        "color": color,
        "group": group,
        "parent_id": None,
        "is_empty": empty,
        "is_anomalous": anomalous,
        "is_deleted": False,
        "hotkey": hotkey,
    }


def _task(n, title, task_type, labels=None, schema=None):
    task = {"id": oid(n), "title": title, "task_type": task_type}
    if labels is not None:
        task.update(labels=labels, label_schema_id=oid(schema))
    return task


def _project(n, name, tasks, created, score=None):
    ids = [t["id"] for t in tasks]
    trainable = [t for t in tasks if t["task_type"] not in ("dataset", "crop")]
    return {
        "id": oid(n),
        "name": name,
        "creation_time": created,
        "creator_id": CREATOR,
        "pipeline": {"tasks": tasks, "connections": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]},
        "performance": {
            "score": score,
            "task_performances": [
                {"task_id": t["id"], "score": {"value": score, "metric_type": "f-measure"}}
                for t in trainable
                if score is not None
            ],
        },
        "thumbnail": f"/api/v1/organizations/{ORG_ID}/workspaces/{WORKSPACE_ID}/projects/{oid(n)}/thumbnail",
        "storage_info": {},
        "datasets": [{"id": oid(0x10000 + n), "name": "Dataset", "creation_time": created, "use_for_training": True}],
    }


def _group(n, name, template, task_id, models):
    return {
        "id": oid(n),
        "name": name,
        "model_template_id": template,
        "task_id": task_id,
        "learning_approach": "fully_supervised",
        "lifecycle_stage": "active",
        "_models": models,
    }


def _optimized(n, arch, base_id, fmt, precision, *, size, performance, created, xai=False):
    kind = "ONNX" if fmt == "ONNX" else ("POT" if precision == "INT8" else "MO")
    return {
        "id": oid(n),
        "name": f"{arch} {fmt} {precision}" + (" with XAI head" if xai else ""),
        "version": 1,
        "creation_date": created,
        "size": size,
        "total_disk_size": size,
        "model_format": fmt,
        "precision": [precision],
        "has_xai_head": xai,
        "optimization_type": kind,
        "optimization_methods": ["QUANTIZATION"] if kind == "POT" else [],
        "optimization_objectives": {},
        "model_status": "SUCCESS",
        "configurations": [{"name": "sample_size", "value": 300}] if kind == "POT" else [],
        "performance": performance,
        "target_device": "CPU",
        "target_device_type": None,
        "latency": "0 ms",
        "fps_throughput": "0.0",
        "lifecycle_stage": "active",
        "previous_revision_id": base_id,
        "previous_trained_revision_id": base_id,
    }


def _model(n, arch, labels, *, size, performance, created, active=True, purged=False, variants=()):
    """A base model detail; ``variants`` are (n, format, precision, xai) for its optimized models."""
    optimized = [
        _optimized(
            vn,
            arch,
            oid(n),
            fmt,
            precision,
            xai=xai,
            performance=performance,
            size=size // (2 if precision == "FP16" else 4 if precision == "INT8" else 1),
            created=created.replace("T00", "T01"),
        )
        for vn, fmt, precision, xai in variants
    ]
    return {
        "id": oid(n),
        "name": arch,
        "architecture": arch,
        "version": 1,
        "creation_date": created,
        "size": size,
        "total_disk_size": size + sum(o["size"] for o in optimized),
        "label_schema_in_sync": True,
        "score_up_to_date": True,
        "performance": performance,
        "precision": ["FP32"],
        "target_device": "CPU",
        "target_device_type": None,
        "latency": "0 ms",
        "fps_throughput": "0.0",
        "previous_revision_id": None,
        "previous_trained_revision_id": None,
        "labels": labels,
        "training_dataset_info": {
            "dataset_storage_id": oid(0x10000),
            "dataset_revision_id": oid(0x20000 + n),
            "n_samples": 120,
            "n_images": 120,
            "n_videos": 0,
            "n_frames": 0,
        },
        "training_framework": {"type": "otx", "version": "2.2.0"},
        "purge_info": {
            "is_purged": purged,
            "purge_time": "2025-02-01T00:00:00+00:00" if purged else None,
            "user_uid": CREATOR if purged else None,
        },
        "learning_approach": "fully_supervised",
        "lifecycle_stage": "active",
        "optimized_models": optimized,
        "_active": active,
    }


def _public(data: dict) -> dict:
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _summary(model: dict) -> dict:
    keys = (
        "id",
        "name",
        "creation_date",
        "version",
        "size",
        "performance",
        "label_schema_in_sync",
        "score_up_to_date",
        "purge_info",
        "lifecycle_stage",
    )
    return {**{k: model[k] for k in keys}, "active_model": model["_active"]}


def _ir_xml(name: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<net name="{name}" version="11"><layers/><edges/>'
        f'<rt_info><model_info><model_type value="fake"/></model_info></rt_info></net>\n'
    ).encode()


# --- the server -----------------------------------------------------------------------------------

_P = r"/organizations/(?P<org>[^/]+)/workspaces/(?P<ws>[^/]+)"
_PR = _P + r"/projects/(?P<project_id>[^/]+)"
_G = _PR + r"/model_groups/(?P<model_group_id>[^/]+)"
_M = _G + r"/models/(?P<model_id>[^/]+)"
_D = _PR + r"/code_deployments/(?P<deployment_id>[^/]+)"
_ROUTES = [
    (method, re.compile(pattern), name)
    for method, pattern, name in [
        ("GET", r"/personal_access_tokens/organization", "organization"),
        ("GET", r"/organizations/(?P<org>[^/]+)/workspaces", "workspaces"),
        ("GET", _P + r"/projects", "projects"),
        ("GET", _PR, "project"),
        ("GET", _PR + r"/model_groups", "model_groups"),
        ("GET", _G, "model_group"),
        ("GET", _M, "model"),
        ("GET", _M + r"/export", "model_export"),
        ("GET", _M + r"/optimized_models/(?P<optimized_model_id>[^/]+)/export", "optimized_export"),
        ("POST", _PR + r"/code_deployments:prepare", "prepare_deployment"),
        ("GET", _D, "deployment"),
        ("GET", _D + r"/download", "deployment_download"),
    ]
]


class FakeGeti:
    """A Geti server on 127.0.0.1 (random port) with canned projects; see the module docstring.

    ``deployment_polls``: how many GETs of a code deployment still answer PREPARING (the next one
    answers DONE, or FAILED if it includes a model in ``failing_deployment_models``).
    ``model_groups_shape``: "model_groups" (current), "items" or "list" (old servers).
    ``tls``: serve HTTPS with a self-signed certificate whose path is ``ca_path``.
    """

    def __init__(
        self,
        *,
        project_count: int | None = None,
        deployment_polls: int = 2,
        failing_deployment_models=(CELLS_INT8,),
        model_groups_shape: str = "model_groups",
        tls: bool = False,
        token: str = TOKEN,
        org_id: str = ORG_ID,
        workspace_id: str = WORKSPACE_ID,
    ):
        self.token = token
        self.org_id = org_id
        self.workspace_id = workspace_id
        self.workspaces = [
            {
                "id": workspace_id,
                "name": "Default",
                "creator_name": "admin",
                "creation_date": "2025-01-01T00:00:00+00:00",
            }
        ]
        self.deployment_polls = deployment_polls
        self.failing_deployment_models = set(failing_deployment_models)
        self.model_groups_shape = model_groups_shape
        self.tls = tls
        self.ca_path: str | None = None
        self.requests: list[RecordedRequest] = []
        # An Event: while it is set to one that is not set, downloads send their headers and wait.
        self.hold_downloads: threading.Event | None = None
        self.projects: dict[str, dict] = {}  # id -> project detail
        self.model_groups: dict[str, list] = {}  # project id -> groups (models under "_models")
        self.deployments: dict[str, dict] = {}
        self._canned: list[_Reply] = []
        self._overrides: list[tuple[str, _Reply]] = []
        self._digests: dict[tuple, Digest] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self._build_canned_data(project_count)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeGeti:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        if self.tls:
            self._tmpdir = tempfile.mkdtemp(prefix="fake-geti-")
            cert, key = _self_signed_cert(Path(self._tmpdir))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.ca_path = str(cert)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-geti", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> FakeGeti:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Scheme, host and port, i.e. GETI_HOST."""
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def workspace_path(self) -> str:
        """``/api/v1/organizations/{org}/workspaces/{ws}``, the prefix of every project route."""
        return f"/api/v1/organizations/{self.org_id}/workspaces/{self.workspace_id}"

    # --- scenarios ----------------------------------------------------------------------------

    def queue_response(
        self,
        status: int,
        body: bytes | str = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with this, before authentication and routing."""
        body = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._canned.extend(_Reply(status, body, content_type, dict(headers or {})) for _ in range(times))

    def fail_next(self, status: int = 503, times: int = 1, retry_after: float | None = None) -> None:
        """Geti-shaped JSON errors for the next requests: 503 "not ready", 429 "slow down"..."""
        code, message = {
            429: ("too_many_requests", "Too many requests, slow down."),
            503: ("service_unavailable", "The service is not ready yet."),
        }.get(status, ("internal_server_error", "Fake failure."))
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        body = json.dumps({"http_status": status, "message": message, "error_code": code})
        self.queue_response(status, body, headers=headers, times=times)

    def override(
        self,
        path_suffix: str,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str = "application/zip",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` authenticated requests whose path ends with ``path_suffix``
        with this instead of routing them (an unsafe zip for ``/export``, a missing route...)."""
        body = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._overrides.extend((path_suffix, _Reply(status, body, content_type)) for _ in range(times))

    def _take_override(self, path: str) -> _Reply | None:
        with self._lock:
            for index, (suffix, reply) in enumerate(self._overrides):
                if path.endswith(suffix):
                    del self._overrides[index]
                    return reply
        return None

    def set_size(self, entity_id: str, size: int) -> None:
        """Set a base or optimized model's ``size`` and so its download's binary member size."""
        for model in self._all_models():
            for entity in [model, *model["optimized_models"]]:
                if entity["id"] == entity_id:
                    entity["size"] = size
                    return
        raise KeyError(entity_id)

    def add_filler_projects(self, count: int) -> None:
        """Append ``count`` empty detection projects (for paging tests)."""
        start = len(self.projects) + 1
        for n in range(start, start + count):
            created = (datetime(2025, 2, 1, tzinfo=UTC) + timedelta(minutes=n)).isoformat()
            tasks = [
                _task(0x40000 + 2 * n, "Dataset", "dataset"),
                _task(
                    0x40001 + 2 * n,
                    "Detection",
                    "detection",
                    [_label(0x50000 + n, "object", "#ff0000ff", "Detection")],
                    0x60000 + n,
                ),
            ]
            self._add_project(_project(0x1000 + n, f"Filler {n:04d}", tasks, created), [])

    def requests_to(self, path_suffix: str, method: str = "GET") -> list[RecordedRequest]:
        """Recorded requests whose path ends with ``path_suffix``."""
        return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]

    # --- what downloads serve -----------------------------------------------------------------

    def export_digest(self, optimized_model_id: str, model_only: bool = True) -> Digest:
        """Size and sha256 of ``.../optimized_models/{id}/export?model_only=...``."""
        return self._digest(self._optimized_export_zip(optimized_model_id, model_only))

    def model_export_digest(self, model_id: str) -> Digest:
        """Size and sha256 of a base model's ``.../models/{id}/export`` (PyTorch_model.zip)."""
        return self._digest(self._model_export_zip(model_id))

    def deployment_digest(self, deployment_id: str) -> Digest:
        """Size and sha256 of ``code_deployments/{id}/download`` once the deployment is DONE."""
        deployment = self.deployments[deployment_id]
        return self._digest(self._package_zip(deployment["_project"], deployment["models"]))

    def _digest(self, reply: _ZipReply) -> Digest:
        with self._lock:
            cached = self._digests.get(reply.key)
        if cached is None:
            cached = zip_digest(reply.members)
            with self._lock:
                self._digests[reply.key] = cached
        return cached

    # --- canned data --------------------------------------------------------------------------

    def _add_project(self, project: dict, groups: list) -> None:
        self.projects[project["id"]] = project
        self.model_groups[project["id"]] = groups

    def _all_models(self):
        for groups in self.model_groups.values():
            for group in groups:
                yield from group["_models"]

    def _build_canned_data(self, project_count: int | None) -> None:
        day = "2025-01-0{}T00:00:00+00:00".format
        widget_labels = [
            _label(0x0D, "widget", "#00ff00ff", "Detection", hotkey="1"),
            _label(0x0E, "No object", "#000000ff", "No object", empty=True),
        ]
        widgets = _project(
            0x1,
            "Widgets",
            [_task(0x0A, "Dataset", "dataset"), _task(0x0B, "Detection", "detection", widget_labels, 0x0C)],
            day(3),
            0.91,
        )
        score = {"score": 0.91}
        self._add_project(
            widgets,
            [
                _group(
                    0x100,
                    "YOLOX-TINY",
                    "Object_Detection_YOLOX_TINY",
                    oid(0x0B),
                    [
                        _model(
                            0x200,
                            "YOLOX-TINY",
                            widget_labels,
                            size=64_000,
                            performance=score,
                            created=day(3),
                            variants=[
                                (0x301, "OpenVINO", "FP16", False),
                                (0x302, "OpenVINO", "INT8", False),
                                (0x303, "OpenVINO", "FP32", False),
                                (0x304, "OpenVINO", "FP32", True),
                                (0x305, "ONNX", "FP32", False),
                            ],
                        )
                    ],
                ),
                _group(
                    0x101,
                    "ATSS",
                    "Object_Detection_ATSS",
                    oid(0x0B),
                    [
                        _model(
                            0x201,
                            "ATSS",
                            widget_labels,
                            size=48_000,
                            performance={"score": 0.84},
                            created=day(2),
                            active=False,
                            purged=True,
                            variants=[(0x306, "OpenVINO", "FP16", False)],
                        )
                    ],
                ),
            ],
        )

        cell_labels = [
            _label(0x1D, "cell", "#ff00ffff", "Instance segmentation"),
            _label(0x1E, "Empty", "#000000ff", "Empty", empty=True),
        ]
        cells = _project(
            0x2,
            "Cells",
            [
                _task(0x1A, "Dataset", "dataset"),
                _task(0x1B, "Instance segmentation", "instance_segmentation", cell_labels, 0x1C),
            ],
            day(4),
            0.8,
        )
        self._add_project(
            cells,
            [
                _group(
                    0x110,
                    "MaskRCNN-EfficientNetB2B",
                    "Custom_Counting_Instance_Segmentation_MaskRCNN_EfficientNetB2B",
                    oid(0x1B),
                    [
                        _model(
                            0x210,
                            "MaskRCNN-EfficientNetB2B",
                            cell_labels,
                            size=80_000,
                            performance={"score": 0.8},
                            created=day(4),
                            variants=[
                                (0x311, "OpenVINO", "FP32", False),
                                (0x312, "OpenVINO", "FP16", False),
                                (0x313, "OpenVINO", "INT8", False),
                                (0x314, "ONNX", "FP32", False),
                            ],
                        )
                    ],
                ),
            ],
        )

        scratch_labels = [
            _label(0x2D, "Normal", "#00ff00ff", "default - Anomaly"),
            _label(0x2E, "Anomalous", "#ff0000ff", "default - Anomaly", anomalous=True),
        ]
        scratches = _project(
            0x3,
            "Scratches",
            [_task(0x2A, "Dataset", "dataset"), _task(0x2B, "Anomaly", "anomaly", scratch_labels, 0x2C)],
            day(5),
            0.87,
        )
        anomaly_score = {"local_score": 0.62, "global_score": 0.87}
        self._add_project(
            scratches,
            [
                _group(
                    0x120,
                    "PADIM",
                    "ote_anomaly_classification_padim",
                    oid(0x2B),
                    [
                        _model(
                            0x220,
                            "PADIM",
                            scratch_labels,
                            size=40_000,
                            performance=anomaly_score,
                            created=day(5),
                            variants=[
                                (0x321, "OpenVINO", "FP32", False),
                                (0x322, "OpenVINO", "FP16", False),
                                (0x323, "ONNX", "FP32", False),
                            ],
                        )
                    ],
                ),
            ],
        )

        car_labels = [_label(0x3E, "car", "#0000ffff", "Detection")]
        type_labels = [_label(0x3F, "sedan", "#ffff00ff", "Type"), _label(0x40, "truck", "#00ffffff", "Type")]
        parking = _project(
            0x4,
            "Parking",
            [
                _task(0x3A, "Dataset", "dataset"),
                _task(0x3B, "Detection", "detection", car_labels, 0x45),
                _task(0x3C, "Crop", "crop"),
                _task(0x3D, "Classification", "classification", type_labels, 0x46),
            ],
            day(6),
            0.75,
        )
        self._add_project(
            parking,
            [
                _group(
                    0x130,
                    "SSD",
                    "Custom_Object_Detection_Gen3_SSD",
                    oid(0x3B),
                    [
                        _model(
                            0x230,
                            "SSD",
                            car_labels,
                            size=32_000,
                            performance={"score": 0.7},
                            created=day(6),
                            variants=[(0x331, "OpenVINO", "FP16", False)],
                        )
                    ],
                ),
                _group(
                    0x131,
                    "EfficientNet-B0",
                    "Custom_Image_Classification_EfficinetNet-B0",
                    oid(0x3D),
                    [
                        _model(
                            0x231,
                            "EfficientNet-B0",
                            type_labels,
                            size=24_000,
                            performance={"score": 0.8},
                            created=day(6),
                            variants=[(0x332, "OpenVINO", "FP16", False)],
                        )
                    ],
                ),
            ],
        )

        if project_count is not None:
            self.add_filler_projects(max(0, project_count - len(self.projects)))

    # --- lookups (raise _NotFound with Geti's error) ------------------------------------------

    def _project(self, project_id):
        if project_id not in self.projects:
            raise _NotFound(
                _error(
                    404, "project_not_found", f"The requested project could not be found. Project ID: `{project_id}`."
                )
            )
        return self.projects[project_id]

    def _group(self, project_id, group_id):
        self._project(project_id)
        for group in self.model_groups[project_id]:
            if group["id"] == group_id:
                return group
        raise _NotFound(
            _error(
                404,
                "model_storage_not_found",
                f"The requested model storage could not be found. Model storage ID: `{group_id}`.",
            )
        )

    def _model_not_found(self, model_id):
        return _NotFound(
            _error(404, "model_not_found", f"The requested model could not be found. Model ID: `{model_id}`.")
        )

    def _find_optimized(self, project_id, optimized_model_id, group_id=None):
        """(group, base model, optimized model) for an optimized id within the project."""
        self._project(project_id)
        groups = [self._group(project_id, group_id)] if group_id else self.model_groups[project_id]
        for group in groups:
            for model in group["_models"]:
                for optimized in model["optimized_models"]:
                    if optimized["id"] == optimized_model_id:
                        return group, model, optimized
        raise self._model_not_found(optimized_model_id)

    def _task_of(self, project_id, group):
        tasks = self.projects[project_id]["pipeline"]["tasks"]
        return next(t for t in tasks if t["id"] == group["task_id"])

    # --- zips ---------------------------------------------------------------------------------

    def _optimized_export_zip(self, optimized_model_id, model_only=True, project_id=None) -> _ZipReply:
        for pid in [project_id] if project_id else self.projects:
            try:
                group, model, optimized = self._find_optimized(pid, optimized_model_id)
                break
            except _NotFound:
                continue
        else:
            raise self._model_not_found(optimized_model_id)
        task = self._task_of(pid, group)
        payload = Generated(optimized["id"], optimized["size"])
        key = ("export", optimized["id"], model_only, optimized["size"])
        config = json.dumps(
            {"model_type": group["name"], "task_type": task["task_type"], "confidence_threshold": 0.35}
        ).encode()
        if optimized["model_format"] == "ONNX":
            return _ZipReply("ONNX_model.zip", key, [("model.onnx", payload)])
        if model_only:
            members = [("openvino.xml", _ir_xml(optimized["name"])), ("openvino.bin", payload)]
            if task["task_type"] == "detection":
                members.append(("config.json", config))
            return _ZipReply("OpenVINO_model.zip", key, members)
        return _ZipReply(
            "OpenVINO_exportable_code.zip",
            key,
            [
                ("model/model.xml", _ir_xml(optimized["name"])),
                ("model/model.bin", payload),
                ("model/config.json", config),
                ("python/demo.py", b"print('fake demo')\n"),
                ("python/requirements.txt", b"openvino\n"),
                ("README.md", b"# Exportable code\n"),
                ("LICENSE", b"Apache-2.0\n"),
            ],
        )

    def _model_export_zip(self, model_id) -> _ZipReply:
        for model in self._all_models():
            if model["id"] == model_id:
                return _ZipReply(
                    "PyTorch_model.zip",
                    ("base", model_id, model["size"]),
                    [("weights.pth", Generated(model_id, model["size"]))],
                )
        raise self._model_not_found(model_id)

    def _package_zip(self, project_id, models) -> _ZipReply:
        project = self._project(project_id)
        entries = [self._find_optimized(project_id, m["model_id"], m["model_group_id"]) for m in models]
        key = ("package", project_id, tuple((o["id"], o["size"]) for _, _, o in entries))
        members = [("deployment/project.json", json.dumps(_public(project)).encode())]
        for group, _, optimized in entries:
            folder = f"deployment/{self._task_of(project_id, group)['title']}"
            members += [
                (f"{folder}/model.json", json.dumps(optimized).encode()),
                (f"{folder}/model/model.xml", _ir_xml(optimized["name"])),
                (f"{folder}/model/model.bin", Generated(optimized["id"], optimized["size"])),
                (f"{folder}/model/config.json", json.dumps({"model_type": group["name"]}).encode()),
                (f"{folder}/python/requirements.txt", b"openvino\n"),
            ]
        members += [
            ("README.md", b"# Deployment\n"),
            ("LICENSE", b"Apache-2.0\n"),
            ("example_code/demo.py", b"print('fake demo')\n"),
            ("sample_image.jpg", b"\xff\xd8\xff\xd9"),
        ]
        return _ZipReply(f"Deployment-{project['name']}.zip", key, members)

    # --- routes (each returns a _Reply or _ZipReply) -------------------------------------------

    def handle(self, method, path, query, body) -> _Reply | _ZipReply:
        if not path.startswith("/api/v1/"):
            return _json_reply({"endpoint_not_found_response": f"Endpoint {path} is not found"}, 404)
        route = path[len("/api/v1") :]
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(route)
            if match and route_method == method:
                params = match.groupdict()
                for key, value in params.items():
                    if key.endswith("_id") and not _ID.match(value):
                        return _error(
                            400,
                            "bad_request",
                            f"Invalid request parameters: '{key}' must be a valid ObjectId, got {value!r}.",
                        )
                if params.get("org", self.org_id) != self.org_id:
                    return _error(404, "organization_not_found", f"Organization {params['org']} not found.")
                if params.get("ws", self.workspace_id) != self.workspace_id:
                    return _error(404, "workspace_not_found", f"Workspace {params['ws']} not found.")
                params.pop("org", None)
                params.pop("ws", None)
                try:
                    return getattr(self, f"_route_{name}")(query, body, **params)
                except _NotFound as exc:
                    return exc.reply
        return _json_reply({"endpoint_not_found_response": f"Endpoint {path} is not found"}, 404)

    def _route_organization(self, query, body):
        return _json_reply({"organizationId": self.org_id})

    def _route_workspaces(self, query, body):
        return _json_reply({"workspaces": self.workspaces})

    def _route_projects(self, query, body):
        try:
            limit = int(query.get("limit", ["10"])[0])
            skip = int(query.get("skip", ["0"])[0])
        except ValueError:
            return _error(400, "bad_request", "Invalid request parameters: 'limit' and 'skip' must be integers.")
        if not 1 <= limit <= 100 or skip < 0:
            return _error(400, "bad_request", "Invalid request parameters: 'limit' must be in 1..100, 'skip' >= 0.")
        name = query.get("name", [""])[0].lower()
        by_name = query.get("sort_by", ["creation_date"])[0] == "name"
        items = sorted(
            self.projects.values(),
            key=lambda p: p["name"].lower() if by_name else p["creation_time"],
            reverse=query.get("sort_direction", ["dsc"])[0] != "asc",
        )
        items = [p for p in items if name in p["name"].lower()]
        page = items[skip : skip + limit]
        # Like Geti: next_page is set on every non-empty page, the last one included.
        next_page = f"{self.workspace_path}/projects?limit={limit}&skip={skip + limit}" if page else ""
        return _json_reply(
            {
                "projects": [{k: v for k, v in _public(p).items() if k != "datasets"} for p in page],
                "project_counts": len(items),
                "project_page_count": len(page),
                "next_page": next_page,
            }
        )

    def _route_project(self, query, body, project_id):
        return _json_reply(_public(self._project(project_id)))

    def _group_json(self, group):
        return {**_public(group), "models": [_summary(m) for m in group["_models"]]}

    def _route_model_groups(self, query, body, project_id):
        self._project(project_id)
        groups = [
            self._group_json(g)
            for g in self.model_groups[project_id]
            if "task_id" not in query or g["task_id"] == query["task_id"][0]
        ]
        if self.model_groups_shape == "list":
            return _json_reply(groups)
        return _json_reply({self.model_groups_shape: groups})

    def _route_model_group(self, query, body, project_id, model_group_id):
        return _json_reply(self._group_json(self._group(project_id, model_group_id)))

    def _route_model(self, query, body, project_id, model_group_id, model_id):
        group = self._group(project_id, model_group_id)
        for model in group["_models"]:
            if model["id"] == model_id:
                return _json_reply(_public(model))
        # An optimized id gets its base model's detail with the optimized id and precision (§2.5).
        _, model, optimized = self._find_optimized(project_id, model_id, model_group_id)
        return _json_reply({**_public(model), "id": optimized["id"], "precision": optimized["precision"]})

    def _purged_error(self, model):
        if model["purge_info"]["is_purged"]:
            raise _NotFound(
                _error(422, "model_purging_not_possible", f"The weights of model `{model['id']}` have been purged.")
            )

    def _route_model_export(self, query, body, project_id, model_group_id, model_id):
        group = self._group(project_id, model_group_id)
        model = next((m for m in group["_models"] if m["id"] == model_id), None)
        if model is None:
            raise self._model_not_found(model_id)
        self._purged_error(model)
        return self._model_export_zip(model_id)

    def _route_optimized_export(self, query, body, project_id, model_group_id, model_id, optimized_model_id):
        # Like Geti, {model_id} is not read.
        _, model, _ = self._find_optimized(project_id, optimized_model_id, model_group_id)
        self._purged_error(model)
        model_only = query.get("model_only", ["false"])[0].lower() == "true"
        return self._optimized_export_zip(optimized_model_id, model_only, project_id)

    def _deployment_request(self, project_id, body):
        """The ``models`` of a prepare request, validated; or raise with Geti's error."""
        self._project(project_id)
        try:
            models = json.loads(body or b"{}").get("models")
        except (ValueError, AttributeError):
            models = None
        if (
            not isinstance(models, list)
            or not models
            or not all(isinstance(m, dict) and {"model_id", "model_group_id"} <= m.keys() for m in models)
        ):
            raise _NotFound(
                _error(400, "code_deployment_invalid", "Request must list models with 'model_id' and 'model_group_id'.")
            )
        for entry in models:
            _, model, optimized = self._find_optimized(project_id, entry["model_id"], entry["model_group_id"])
            if optimized["model_format"] != "OpenVINO":
                raise _NotFound(
                    _error(400, "incompatible_model_format", f"Model `{optimized['id']}` is not an OpenVINO model.")
                )
            self._purged_error(model)
        return [{"model_id": m["model_id"], "model_group_id": m["model_group_id"]} for m in models]

    def _route_prepare_deployment(self, query, body, project_id):
        models = self._deployment_request(project_id, body)
        with self._lock:
            deployment_id = f"6650ad{len(self.deployments) + 1:018x}"
            self.deployments[deployment_id] = {
                "id": deployment_id,
                "progress": 0.0,
                "state": "PREPARING",
                "models": models,
                "creator_id": CREATOR,
                "creation_time": datetime.now(UTC).isoformat(),
                "_project": project_id,
                "_polls": 0,
                "_fails": any(m["model_id"] in self.failing_deployment_models for m in models),
            }
            return _json_reply(_public(self.deployments[deployment_id]))

    def _deployment(self, project_id, deployment_id):
        self._project(project_id)
        deployment = self.deployments.get(deployment_id)
        if deployment is None or deployment["_project"] != project_id:
            raise _NotFound(_error(404, "code_deployment_not_found", f"Code deployment `{deployment_id}` not found."))
        return deployment

    def _route_deployment(self, query, body, project_id, deployment_id):
        deployment = self._deployment(project_id, deployment_id)
        with self._lock:
            if deployment["state"] == "PREPARING":
                deployment["_polls"] += 1
                if deployment["_polls"] > self.deployment_polls:
                    deployment["state"] = "FAILED" if deployment["_fails"] else "DONE"
                    deployment["progress"] = 100.0 if deployment["state"] == "DONE" else 50.0
                else:
                    deployment["progress"] = round(100.0 * deployment["_polls"] / (self.deployment_polls + 1), 1)
            return _json_reply(_public(deployment))

    def _route_deployment_download(self, query, body, project_id, deployment_id):
        deployment = self._deployment(project_id, deployment_id)
        if deployment["state"] != "DONE":
            return _error(
                503,
                "code_deployment_download_not_ready",
                f"Code deployment `{deployment_id}` is not ready for download.",
            )
        return self._package_zip(project_id, deployment["models"])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' session expects
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        fake: FakeGeti = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = unquote(url.path)
        with fake._lock:
            fake.requests.append(
                RecordedRequest(
                    method,
                    path,
                    parse_qs(url.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
            canned = fake._canned.pop(0) if fake._canned else None
        if canned is not None:
            reply = canned
        elif self.headers.get("x-api-key") != fake.token:
            # Envoy's immediate response: plain text, not Geti's JSON.
            reply = _Reply(401, b"Invalid authorization token", "text/plain")
        else:
            reply = fake._take_override(path) or fake.handle(
                method, path, parse_qs(url.query, keep_blank_values=True), body
            )
        try:
            if isinstance(reply, _ZipReply):
                self._send_zip(fake, reply)
            else:
                self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up mid-download

    def _send(self, reply: _Reply):
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _send_zip(self, fake: FakeGeti, reply: _ZipReply):
        digest = fake._digest(reply)  # the length must be known before the first byte
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Disposition", f"attachment; filename={reply.filename}")
        self.send_header("Content-Length", str(digest.size))
        self.end_headers()
        if fake.hold_downloads is not None:
            fake.hold_downloads.wait(30)
        write_zip(reply.members, self.wfile.write)


def _self_signed_cert(directory: Path, names=("localhost",), addresses=("127.0.0.1",)) -> tuple[Path, Path]:
    """A self-signed certificate for ``names`` and ``addresses`` (by default localhost and
    127.0.0.1), usable as its own CA bundle."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-geti")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
