"""HTTP client for Intel Geti's REST API (v1, Geti 2.x layout).

This module only speaks HTTP: it imports nothing from Django, so a management command, a shell or a
test can use it with a plain ``GetiConfig``. Mapping Geti's data to registry rows is the importer's job.

What it does differently from the Geti client of Intel's Model Registry service, which this
registry replaces: every failure raises ``GetiError`` instead of being swallowed (a wrong token
used to look like "no projects"), projects are paged past 100, every optimized format is kept, a
model without a plain ``score`` does not crash, and waiting for a deployment sleeps, backs off and
gives up at a deadline.
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)

# Statuses that mean "the server did not handle this request, try again later".
RETRY_STATUSES = frozenset({429, 503})

# Task types that have no model: the pipeline's input and the crop step of a task chain.
UNTRAINABLE_TASK_TYPES = frozenset({"dataset", "crop"})

ProgressCallback = Callable[[int, "int | None"], None]


class GetiError(Exception):
    """Any failure talking to Geti: HTTP error, unreachable server, timeout or unusable answer.

    One type so callers (views, the importer, the API exception handler) need one ``except``.
    ``status`` is the HTTP status Geti (or its proxy) answered with, None when no answer came.
    ``code`` is Geti's ``error_code`` (``project_not_found``...) or one of ours (``connection_error``,
    ``timeout``, ``invalid_json``, ``unexpected_html``, ``deployment_failed``, ``deadline_exceeded``...).
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        details = [f"HTTP {self.status}" if self.status else None, self.code]
        details = [d for d in details if d]
        return f"{self.message} ({', '.join(details)})" if details else self.message


class GetiConfigError(ValueError):
    """The Geti settings in the environment are unusable; raised when they are read, not at import."""


def parse_verify(value: str | None) -> bool | str:
    """Turn GETI_SERVER_SSL_VERIFY into requests' ``verify``: a bool or a CA bundle path.

    On-prem Geti is usually self-signed, so a CA bundle path is the safe alternative to ``false``.
    Empty means the secure default, True.
    """
    text = (value or "").strip()
    if text.lower() in ("", "1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    if os.path.exists(text):
        return text
    raise GetiConfigError(
        f"GETI_SERVER_SSL_VERIFY={text!r} is neither true/false nor the path of an existing CA bundle."
    )


@dataclass(frozen=True)
class GetiConfig:
    """Where Geti is and how to talk to it.

    ``organization_id``/``workspace_id`` may be None: the client then asks Geti for them.
    ``retries``/``backoff``/``max_backoff`` bound the time spent retrying 429/503 and connection
    errors: the waits are backoff, 2*backoff, 4*backoff... each capped at max_backoff (so is a
    Retry-After header), so tests can make them tiny.
    """

    host: str
    token: str = field(repr=False)  # never in logs or tracebacks
    api_version: str = "v1"
    organization_id: str | None = None
    workspace_id: str | None = None
    verify: bool | str = True
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GetiConfig | None:
        """Read the GETI_* variables; None when GETI_HOST is unset or empty (integration off).

        Empty values count as unset because Compose passes unset variables as empty strings, which
        gave the old service URLs like ``/api//organizations//``.
        """

        def get(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        host = get("GETI_HOST")
        if host is None:
            return None
        token = get("GETI_TOKEN")
        if token is None:
            raise GetiConfigError("GETI_HOST is set but GETI_TOKEN is empty; Geti needs an API key.")
        if "://" not in host:
            host = "https://" + host  # Geti is served over HTTPS only
        return cls(
            host=host.rstrip("/"),
            token=token,
            api_version=(get("GETI_SERVER_API_VERSION") or "v1").strip("/"),
            organization_id=get("GETI_ORGANIZATION_ID"),
            workspace_id=get("GETI_WORKSPACE_ID"),
            verify=parse_verify(environ.get("GETI_SERVER_SSL_VERIFY")),
        )


# --- Data returned by the client ------------------------------------------------------------------
# Each dataclass keeps the fields the registry uses and the whole JSON object in ``raw``, so nothing
# Geti sends is lost and a field Geti adds later needs no client change.


def _score(performance: Mapping[str, Any] | None) -> float | None:
    """The one number to show for a model; anomaly models may only have global/local scores."""
    performance = performance or {}
    for key in ("score", "global_score", "local_score"):
        if performance.get(key) is not None:
            return performance[key]
    return None


@dataclass
class Task:
    """One step of a project's pipeline; ``labels`` are Geti's label objects as sent."""

    id: str
    title: str
    task_type: str
    labels: list[dict] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        return cls(
            id=data["id"],
            title=data.get("title", ""),
            task_type=data["task_type"],
            labels=list(data.get("labels") or []),
        )

    @property
    def trainable(self) -> bool:
        return self.task_type not in UNTRAINABLE_TASK_TYPES


@dataclass
class OptimizedModel:
    """An exported/optimized variant of a trained model (OpenVINO FP32/FP16/INT8, ONNX...).

    ``is_purged`` is copied from the base model: a purged model's variants cannot be downloaded.
    """

    id: str
    name: str
    model_format: str | None
    precision: list[str]
    optimization_type: str | None
    has_xai_head: bool
    model_status: str | None
    size: int | None
    score: float | None
    version: int | None
    creation_date: str | None
    base_model_id: str | None
    is_purged: bool = False
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, is_purged: bool = False) -> OptimizedModel:
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            model_format=data.get("model_format"),
            precision=list(data.get("precision") or []),
            optimization_type=data.get("optimization_type"),
            has_xai_head=bool(data.get("has_xai_head", False)),
            model_status=data.get("model_status"),
            size=data.get("size"),
            score=_score(data.get("performance")),
            version=data.get("version"),
            creation_date=data.get("creation_date"),
            base_model_id=data.get("previous_trained_revision_id"),
            is_purged=is_purged,
            raw=dict(data),
        )

    @property
    def is_openvino(self) -> bool:
        return (self.model_format or "").lower() == "openvino"


@dataclass
class Model:
    """A trained model version. From a group listing it is a summary (no optimized models, no
    labels); from ``get_model``/``fill_tree`` it is the full detail.

    ``active_model`` only exists in the summary, so ``fill_tree`` carries it over.
    """

    id: str
    name: str
    architecture: str
    version: int | None
    creation_date: str | None
    size: int | None
    score: float | None
    performance: dict
    precision: list[str]
    is_purged: bool
    active_model: bool | None
    labels: list[dict]
    optimized_models: list[OptimizedModel]
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, active_model: bool | None = None) -> Model:
        is_purged = bool((data.get("purge_info") or {}).get("is_purged", False))
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            architecture=data.get("architecture") or data.get("name", ""),
            version=data.get("version"),
            creation_date=data.get("creation_date"),
            size=data.get("size"),
            score=_score(data.get("performance")),
            performance=dict(data.get("performance") or {}),
            precision=list(data.get("precision") or []),
            is_purged=is_purged,
            active_model=data.get("active_model", active_model),
            labels=list(data.get("labels") or []),
            optimized_models=[
                OptimizedModel.from_json(o, is_purged=is_purged) for o in data.get("optimized_models") or []
            ],
            raw=dict(data),
        )


@dataclass
class ModelGroup:
    """All versions of one architecture trained for one task (Geti's "model storage")."""

    id: str
    name: str
    task_id: str | None
    model_template_id: str | None
    learning_approach: str | None
    models: list[Model]
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelGroup:
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            task_id=data.get("task_id"),
            model_template_id=data.get("model_template_id"),
            learning_approach=data.get("learning_approach"),
            models=[Model.from_json(m) for m in data.get("models") or []],
            raw=dict(data),
        )


@dataclass
class Project:
    """A Geti project; ``model_groups`` is only filled by ``fill_tree``."""

    id: str
    name: str
    creation_time: str | None
    tasks: list[Task]
    score: float | None
    raw: dict = field(default_factory=dict, repr=False)
    model_groups: list[ModelGroup] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Project:
        pipeline = data.get("pipeline") or {}
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            creation_time=data.get("creation_time"),
            tasks=[Task.from_json(t) for t in pipeline.get("tasks") or []],
            score=_score(data.get("performance")),
            raw=dict(data),
        )

    @property
    def task_types(self) -> list[str]:
        """Trainable task types in pipeline order, e.g. ``["detection", "classification"]``."""
        return [t.task_type for t in self.tasks if t.trainable]


@dataclass
class Deployment:
    """A code deployment being prepared; ``state`` is NONE, PREPARING, DONE or FAILED."""

    id: str
    state: str
    progress: float | None
    models: list[dict]
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        return cls(
            id=data["id"],
            state=str(data.get("state", "")).upper(),
            progress=data.get("progress"),
            models=list(data.get("models") or []),
            raw=dict(data),
        )


# --- Client ---------------------------------------------------------------------------------------


def _q(value: str) -> str:
    """Quote an id for a path segment, so a stray "/" or ".." cannot reach another route."""
    return quote(str(value), safe="")


def _error_from_response(resp: requests.Response) -> GetiError:
    """Build a GetiError from a non-2xx answer, keeping Geti's own message and error code.

    Geti application errors are JSON ``{"http_status", "message", "error_code"}``; unknown routes
    and crashes use other one-key objects; the auth proxy answers 401 in plain text.
    """
    code = message = None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("error_code")
        message = body.get("message") or body.get("detail")
        if not message and len(body) == 1:
            message = str(next(iter(body.values())))
    if not message:
        message = resp.text.strip()[:500] or resp.reason or "no message"
    return GetiError(str(message), status=resp.status_code, code=code)


def _retry_after(resp: requests.Response) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or HTTP date), if any."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class GetiClient:
    """Talks to one Geti server through one ``requests.Session`` (keep-alive, one TLS setup).

    ``sleep`` is injectable so tests can check back-off waits without waiting.
    """

    def __init__(self, config: GetiConfig, *, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self._sleep = sleep
        self._root = f"{config.host.rstrip('/')}/api/{config.api_version.strip('/')}"
        self._organization_id = config.organization_id
        self._workspace_id = config.workspace_id
        self.session = requests.Session()
        self.session.headers.update({"x-api-key": config.token, "Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GetiClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- transport --------------------------------------------------------------------------------

    def _request(
        self, method: str, url: str, *, params=None, json=None, stream=False, headers=None
    ) -> requests.Response:
        """Send one request, retrying what is worth retrying; return a 2xx response or raise.

        Retried: 429/503 (honouring Retry-After) and connection failures. Both POST routes used
        here are safe to repeat (a repeated prepare only leaves an unused deployment behind).
        Not retried: read timeouts (a slow Geti would just make the caller wait N times longer)
        and TLS errors (a retry cannot fix a certificate).
        """
        for attempt in range(self.config.retries + 1):
            last = attempt == self.config.retries
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    stream=stream,
                    headers=headers,
                    timeout=self.config.timeout,
                    # Per request, not only on the session: requests lets REQUESTS_CA_BUNDLE /
                    # CURL_CA_BUNDLE override Session.verify, even False (psf/requests#3829).
                    verify=self.config.verify,
                    # Redirects are refused: requests would resend x-api-key to whatever host
                    # a redirect names, and an API call redirected is a login page anyway.
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as exc:
                raise GetiError(f"TLS error talking to {self.config.host}: {exc}", code="tls_error") from exc
            except requests.exceptions.ReadTimeout as exc:
                raise GetiError(
                    f"Geti did not answer {method} {url} within {self.config.timeout}s", code="timeout"
                ) from exc
            except requests.exceptions.ConnectionError as exc:
                if last:
                    raise GetiError(f"Cannot reach Geti at {self.config.host}: {exc}", code="connection_error") from exc
                delay = self._backoff(attempt)
            except requests.RequestException as exc:
                raise GetiError(f"{method} {url} failed: {exc}", code="request_error") from exc
            else:
                if resp.status_code not in RETRY_STATUSES or last:
                    return self._check(resp)
                wait = _retry_after(resp)
                delay = self._backoff(attempt) if wait is None else min(wait, self.config.max_backoff)
                resp.close()
            log.info("Geti %s %s: attempt %d failed, retrying in %.2fs", method, url, attempt + 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises on its last turn

    def _backoff(self, attempt: int) -> float:
        return min(self.config.max_backoff, self.config.backoff * 2**attempt)

    @staticmethod
    def _check(resp: requests.Response) -> requests.Response:
        """Raise GetiError unless this is a usable 2xx answer."""
        if not 200 <= resp.status_code < 300:
            error = _error_from_response(resp)
            if 300 <= resp.status_code < 400:
                error.message = f"Geti redirected to {resp.headers.get('Location')!r}; is the token valid?"
            resp.close()
            raise error
        if "text/html" in resp.headers.get("Content-Type", ""):
            # What an expired session or a proxy in front of Geti returns instead of data.
            resp.close()
            raise GetiError(
                "Geti answered with an HTML page (a login page?) instead of data",
                status=resp.status_code,
                code="unexpected_html",
            )
        return resp

    def _get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self._request("GET", url, params=params))

    def _post_json(self, url: str, body: Any) -> Any:
        return self._json(self._request("POST", url, json=body, headers=self._post_headers()))

    @staticmethod
    def _post_headers() -> dict[str, str]:
        return {"x-geti-csrf-protection": "1"}  # what Geti's UI and SDK send on writes

    @staticmethod
    def _json(resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise GetiError(
                f"Geti sent invalid JSON ({resp.headers.get('Content-Type')}): {resp.text[:200]!r}",
                status=resp.status_code,
                code="invalid_json",
            ) from exc

    @staticmethod
    def _expect(data: Any, *keys: str) -> dict:
        """Return ``data`` if it is a JSON object with ``keys``, else raise GetiError.

        Catches answers of the wrong shape (a proxy's page, another API) at the call that got them.
        """
        if not isinstance(data, dict) or any(key not in data for key in keys):
            raise GetiError(
                f"Unexpected answer from Geti (expected an object with {', '.join(keys)}): {str(data)[:200]}",
                code="unexpected_response",
            )
        return data

    # --- discovery --------------------------------------------------------------------------------

    def organization_id(self) -> str:
        """The configured organization id, or the one the token belongs to (asked once)."""
        if self._organization_id is None:
            data = self._get_json(f"{self._root}/personal_access_tokens/organization")
            self._organization_id = self._expect(data, "organizationId")["organizationId"]
        return self._organization_id

    def workspace_id(self) -> str:
        """The configured workspace id, or the organization's first workspace (asked once).

        Geti 2.x creates exactly one workspace per organization. If there are several, the first
        is used and a warning says to set GETI_WORKSPACE_ID.
        """
        if self._workspace_id is None:
            data = self._get_json(f"{self._root}/organizations/{_q(self.organization_id())}/workspaces")
            workspaces = data if isinstance(data, list) else self._expect(data, "workspaces")["workspaces"]
            if not workspaces:
                raise GetiError("The Geti organization has no workspace", code="workspace_not_found")
            if len(workspaces) > 1:
                log.warning(
                    "Geti has %d workspaces; using %s (%s). Set GETI_WORKSPACE_ID to choose.",
                    len(workspaces),
                    workspaces[0].get("id"),
                    workspaces[0].get("name"),
                )
            self._workspace_id = workspaces[0]["id"]
        return self._workspace_id

    def _project_url(self, project_id: str | None = None) -> str:
        base = f"{self._root}/organizations/{_q(self.organization_id())}/workspaces/{_q(self.workspace_id())}/projects"
        return base if project_id is None else f"{base}/{_q(project_id)}"

    def _model_url(self, project_id: str, group_id: str, model_id: str) -> str:
        return f"{self._project_url(project_id)}/model_groups/{_q(group_id)}/models/{_q(model_id)}"

    # --- read API ---------------------------------------------------------------------------------

    def list_projects(self, page_size: int = 100) -> list[Project]:
        """Every project in the workspace, paging with limit/skip.

        Sorted by creation date ascending, so a project created meanwhile lands on the last page
        instead of shifting the others. ``next_page`` is ignored: Geti sends it on every non-empty
        page, the last one included. Paging stops when ``project_counts`` is reached or a page is
        empty (or short, if a server omits the count).
        """
        projects: dict[str, Project] = {}
        skip = 0
        while True:
            data = self._get_json(
                self._project_url(),
                params={
                    "limit": page_size,
                    "skip": skip,
                    "sort_by": "creation_date",
                    "sort_direction": "asc",
                },
            )
            page = self._expect(data, "projects")["projects"]
            for item in page:
                projects.setdefault(item["id"], Project.from_json(item))
            skip += len(page)
            total = data.get("project_counts")
            if not page or (total is not None and skip >= total) or (total is None and len(page) < page_size):
                return list(projects.values())

    def get_project(self, project_id: str) -> Project:
        """One project with its pipeline (tasks and labels); 404 ``project_not_found`` if unknown."""
        return Project.from_json(self._expect(self._get_json(self._project_url(project_id)), "id"))

    def list_model_groups(self, project_id: str) -> list[ModelGroup]:
        """The project's model groups with model summaries (trained base models only).

        Accepts ``{"model_groups": [...]}`` and the older ``{"items": [...]}`` or bare-list shapes.
        """
        data = self._get_json(f"{self._project_url(project_id)}/model_groups")
        if isinstance(data, dict):
            data = data.get("model_groups", data.get("items"))
        if not isinstance(data, list):
            raise GetiError(f"Unexpected model_groups answer from Geti: {str(data)[:200]}", code="unexpected_response")
        return [ModelGroup.from_json(g) for g in data]

    def get_model(self, project_id: str, group_id: str, model_id: str) -> Model:
        """A trained model's detail, with all its optimized models."""
        data = self._get_json(self._model_url(project_id, group_id, model_id))
        return Model.from_json(self._expect(data, "id"))

    def get_optimized_model(self, project_id: str, group_id: str, optimized_model_id: str) -> OptimizedModel:
        """One optimized model's detail.

        Geti has no route of its own for this: its model-detail route accepts an optimized id and
        answers with the base model's detail (whose ``optimized_models`` include this one).
        """
        data = self._expect(self._get_json(self._model_url(project_id, group_id, optimized_model_id)), "id")
        base = Model.from_json(data)
        for optimized in base.optimized_models:
            if optimized.id == optimized_model_id:
                return optimized
        raise GetiError(
            f"Optimized model {optimized_model_id} is not in Geti's answer", status=404, code="model_not_found"
        )

    def fill_tree(self, project: Project) -> Project:
        """Add the model groups, each model's detail and all its optimized models to a project
        from ``get_project`` or ``list_projects``: one call for the groups, then one per trained
        model, because the summaries in a group list no optimized models."""
        project.model_groups = self.list_model_groups(project.id)
        for group in project.model_groups:
            models = []
            for summary in group.models:
                model = self.get_model(project.id, group.id, summary.id)
                if model.active_model is None:  # only the summary says which model is active
                    model.active_model = summary.active_model
                models.append(model)
            group.models = models
        return project

    # --- downloads --------------------------------------------------------------------------------

    def download_model(
        self,
        project_id: str,
        group_id: str,
        model_id: str,
        optimized_model_id: str | None,
        fileobj: BinaryIO,
        chunk_size: int = 1 << 20,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Stream a model's export zip into ``fileobj``; return the number of bytes written.

        With an optimized id this is ``OpenVINO_model.zip`` (``openvino.xml/.bin``) or
        ``ONNX_model.zip``; ``model_only=true`` is explicit because Geti's default is the much
        larger exportable-code package. Without one it is the base model's ``PyTorch_model.zip``.
        A purged model answers 422 ``model_purging_not_possible``.
        """
        url = self._model_url(project_id, group_id, model_id)
        if optimized_model_id is None:
            url, params = f"{url}/export", None
        else:
            url, params = f"{url}/optimized_models/{_q(optimized_model_id)}/export", {"model_only": "true"}
        resp = self._request("GET", url, params=params, stream=True, headers=self._download_headers())
        return self._stream_to(resp, fileobj, chunk_size, progress)

    def download_deployment(
        self,
        project_id: str,
        deployment_id: str,
        fileobj: BinaryIO,
        chunk_size: int = 1 << 20,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Stream a DONE code deployment's zip into ``fileobj``; return the bytes written."""
        url = f"{self._project_url(project_id)}/code_deployments/{_q(deployment_id)}/download"
        resp = self._request("GET", url, stream=True, headers=self._download_headers())
        return self._stream_to(resp, fileobj, chunk_size, progress)

    @staticmethod
    def _download_headers() -> dict[str, str]:
        # identity: the byte count must match Content-Length and the file Geti stores.
        return {"Accept": "application/zip, application/octet-stream", "Accept-Encoding": "identity"}

    @staticmethod
    def _stream_to(
        resp: requests.Response, fileobj: BinaryIO, chunk_size: int, progress: ProgressCallback | None
    ) -> int:
        """Copy the body chunk by chunk, so memory does not depend on the file's size."""
        length = resp.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        done = 0
        try:
            for chunk in resp.iter_content(chunk_size):
                fileobj.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        except requests.RequestException as exc:
            raise GetiError(f"Download interrupted after {done} bytes: {exc}", code="download_interrupted") from exc
        finally:
            resp.close()
        if total is not None and done != total:
            raise GetiError(f"Download truncated: got {done} of {total} bytes", code="download_interrupted")
        return done

    # --- code deployments -------------------------------------------------------------------------

    @staticmethod
    def _deployment_models(models: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
        entries = [{"model_id": m["model_id"], "model_group_id": m["model_group_id"]} for m in models]
        if not entries:
            raise ValueError("A deployment needs at least one model")
        return entries

    def prepare_deployment(self, project_id: str, models: Iterable[Mapping[str, str]]) -> Deployment:
        """Ask Geti to build a code deployment for OpenVINO optimized models (one per task).

        ``models`` are ``{"model_id": <optimized id>, "model_group_id": ...}``. Geti builds the zip
        in the background; poll with ``wait_for_deployment``.
        """
        url = f"{self._project_url(project_id)}/code_deployments:prepare"
        data = self._post_json(url, {"models": self._deployment_models(models)})
        return Deployment.from_json(self._expect(data, "id"))

    def get_deployment(self, project_id: str, deployment_id: str) -> Deployment:
        data = self._get_json(f"{self._project_url(project_id)}/code_deployments/{_q(deployment_id)}")
        return Deployment.from_json(self._expect(data, "id"))

    def wait_for_deployment(
        self,
        project_id: str,
        deployment_id: str,
        deadline_seconds: float = 600.0,
        poll_interval: float = 1.0,
        max_interval: float = 15.0,
    ) -> Deployment:
        """Poll until the deployment is DONE; raise GetiError if it FAILED or the deadline passed.

        The interval grows by half each poll up to ``max_interval``, so a long build costs few
        requests, and the last sleep is cut short at the deadline.
        """
        deadline = time.monotonic() + deadline_seconds
        interval = poll_interval
        while True:
            deployment = self.get_deployment(project_id, deployment_id)
            if deployment.state == "DONE":
                return deployment
            if deployment.state == "FAILED":
                raise GetiError(f"Geti failed to prepare deployment {deployment_id}", code="deployment_failed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GetiError(
                    f"Deployment {deployment_id} still {deployment.state} after {deadline_seconds}s",
                    code="deadline_exceeded",
                )
            self._sleep(min(interval, remaining))
            interval = min(interval * 1.5, max_interval)
