"""``Registry``: the registry's REST API (``/api/v1/``) as Python calls.

Lists are generators that follow the pages (500 rows a request), so ``for a in
registry.artifacts(precision="INT8")`` walks every match however many there are. Every error
raises a :mod:`registry_client.errors` exception carrying the registry's JSON error.
"""

import json
import time
from urllib.parse import quote, urljoin

import requests
from requests.adapters import HTTPAdapter

from . import config, transfer
from .errors import NotFound, RegistryError, ServerUnavailable, from_response

PAGE_SIZE = 500  # the API's largest page
TIMEOUT = (10, 120)  # connect, read (seconds)


class Registry:
    """A model registry at ``url`` (``http://host:8000``; ``/api/v1`` is added).

    ``token`` is an API token (``manage.py issue_token USER``). Both default to the environment
    (``REGISTRY_URL``, ``REGISTRY_TOKEN``) and then to the file ``registry login`` writes.
    """

    def __init__(self, url=None, token=None, *, timeout=TIMEOUT, parallel=8):
        self.url, self.token = config.settings(url, token)
        self.api = self.url + "/api/v1/"
        self.timeout = timeout
        self.parallel = parallel
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if self.token:
            self.session.headers["Authorization"] = f"Token {self.token}"
        # Presigned S3 URLs carry their own signature: no registry token may go with them.
        self.storage_session = requests.Session()
        for session in (self.session, self.storage_session):
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(parallel, 10))
            session.mount("http://", adapter)
            session.mount("https://", adapter)

    def __repr__(self):
        return f"Registry({self.url!r})"

    def close(self):
        self.session.close()
        self.storage_session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- HTTP --------------------------------------------------------------------------------

    def request(self, method, path, *, ok=(200, 201, 202, 204), **kwargs):
        """One API call; ``path`` is relative to ``/api/v1/`` or a full URL. Raises on errors."""
        url = path if path.startswith(("http://", "https://")) else urljoin(self.api, path)
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise ServerUnavailable(f"Could not reach the registry at {self.url}: {exc}") from exc
        if response.status_code not in ok:
            raise from_response(response)
        return response

    def _json(self, method, path, **kwargs):
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def _pages(self, path, params, limit=None):
        params = {"page_size": PAGE_SIZE, **_query(params)}
        url, count = path, 0
        while url:
            data = self._json("GET", url, params=params)
            for row in data["results"]:
                yield row
                count += 1
                if limit is not None and count >= limit:
                    return
            url, params = data.get("next"), None  # `next` carries the query

    # --- reads -------------------------------------------------------------------------------

    def models(self, *, limit=None, **filters):
        """Registered models: ``name`` (substring), ``tag``, ``search``, ``ordering``, ..."""
        return self._pages("registered-models/", filters, limit)

    def versions(self, model=None, *, limit=None, **filters):
        """Versions, of one registered model when ``model`` is given; any version filter."""
        if model is not None:
            filters["registered_model"] = model
        return self._pages("versions/", filters, limit)

    def artifacts(self, *, limit=None, **filters):
        """Artifacts (variants) matching the API's filters as keyword arguments:
        ``registered_model``, ``version``, ``precision``, ``target_device``, ``format``,
        ``category``, ``label``, ``tag``, ``score_min``, ``search``, ``ordering``, ..."""
        return self._pages("artifacts/", filters, limit)

    def search(self, text, *, limit=None, **filters):
        """Artifacts whose model, version, description, architecture, ... contain ``text``."""
        return self.artifacts(search=text, limit=limit, **filters)

    def model(self, name):
        return self._json("GET", f"registered-models/{_segment(name)}/")

    def version(self, model, version):
        """One version of a model, by its label (archived ones included)."""
        for row in self.versions(model, version=version, include_archived=True, limit=1):
            return row
        raise NotFound(f"{model} has no version {version}.", status=404, code="not_found")

    def artifact(self, artifact_id):
        return self._json("GET", f"artifacts/{_segment(artifact_id)}/")

    def variants(self, model, version):
        """The artifacts of one version."""
        return list(self.artifacts(registered_model=model, version=version, include_archived=True))

    def resolve(
        self, model, *, alias=None, version=None, target_device=None, precision=None, format=None, max_size=None
    ):
        """The best variant of a version (by ``alias`` or ``version`` label) for a device;
        ``precision`` may be a list, best first. Raises NotFound (code ``no_matching_variant``,
        ``extra["constraint"]``) when nothing fits."""
        if precision is not None and not isinstance(precision, str):
            precision = ",".join(precision)
        params = {"alias": alias, "version": version, "target_device": target_device}
        params.update(precision=precision, format=format, max_size=max_size)
        return self._json("GET", f"registered-models/{_segment(model)}/resolve/", params=_query(params))

    def latest_version(self, model):
        for row in self.versions(model, ordering="-created_at", limit=1):
            return row
        raise NotFound(f"{model} has no versions.", status=404, code="not_found")

    def compare(self, *, versions=None, artifacts=None):
        """Field-by-field comparison of 2 to 20 version ids or artifact ids (the first is the baseline)."""
        params = {"versions": ",".join(map(str, versions))} if versions else {}
        if artifacts:
            params["artifacts"] = ",".join(map(str, artifacts))
        return self._json("GET", "compare/", params=params)

    # --- aliases -----------------------------------------------------------------------------

    def aliases(self, model):
        return self._pages(f"registered-models/{_segment(model)}/aliases/", {})

    def alias(self, model, alias):
        return self._json("GET", _alias_path(model, alias))

    def set_alias(self, model, alias, version, *, reason=""):
        """Point ``alias`` at ``version`` (its label): creates the alias or moves it."""
        return self._json("PUT", _alias_path(model, alias), json={"version": str(version), "reason": reason})

    move_alias = set_alias

    def rollback_alias(self, model, alias, *, reason=""):
        """Move the alias back to where it pointed before its latest move."""
        return self._json("POST", _alias_path(model, alias) + "rollback/", json={"reason": reason})

    def alias_history(self, model, alias, *, limit=None):
        """Every set, move, rollback and delete of the alias, newest first."""
        return self._pages(_alias_path(model, alias) + "history/", {}, limit)

    def delete_alias(self, model, alias, *, reason=""):
        self.request("DELETE", _alias_path(model, alias), json={"reason": reason})

    # --- deletes -----------------------------------------------------------------------------

    def delete_model(self, model, *, force=False):
        """Delete a registered model; one with versions needs ``force=True`` (else Conflict)."""
        self.request("DELETE", f"registered-models/{_segment(model)}/", params={"force": "true"} if force else None)

    def delete_version(self, model, version):
        self.request("DELETE", f"versions/{self.version(model, version)['id']}/")

    def delete_artifact(self, artifact_id):
        self.request("DELETE", f"artifacts/{_segment(artifact_id)}/")

    # --- transfers ---------------------------------------------------------------------------

    def push(
        self,
        path,
        *,
        model,
        version,
        precision=None,
        target_device=None,
        format=None,
        score=None,
        labels=None,
        sha256=None,
        direct=None,
        progress=None,
        **fields,
    ):
        """Register the file at ``path`` as a variant of ``model``:``version`` and return the artifact.

        The file goes straight to S3 in parallel presigned parts when the registry offers direct
        uploads (``direct=None`` tries, ``False`` never, ``True`` insists); an interrupted
        upload resumes where it stopped when the same push runs again. Otherwise it streams
        through the API. The registry checks the sha256 (``sha256`` if given, else the
        client's own) and refuses a mismatch (ChecksumMismatch). Extra keyword arguments are
        further registration fields (``category``, ``architecture``, ``description``, ...).
        ``progress(done_bytes, total_bytes)`` is called as bytes go out.
        """
        metadata = {"registered_model": model, "version": str(version), "precision": precision}
        metadata.update(target_device=target_device, format=format, score=score, labels=labels, **fields)
        metadata = {k: v for k, v in metadata.items() if v is not None}
        return transfer.push(self, path, metadata, sha256=sha256, direct=direct, progress=progress)

    def pull(
        self,
        model,
        *,
        alias=None,
        version=None,
        target_device=None,
        precision=None,
        format=None,
        max_size=None,
        dest=".",
        filename=None,
        progress=None,
        mode="redirect",
    ):
        """Download the best variant of ``model`` (by ``alias`` or ``version``; the latest version
        when neither is given) for a device into the folder ``dest`` (created when missing), under
        the name it was uploaded with unless ``filename`` is given.

        Skips the transfer when the local file already has the server's sha256, resumes a partial
        download, verifies the sha256 and renames into place only then. Returns a
        :class:`transfer.PullResult`.
        """
        if alias is None and version is None:
            version = self.latest_version(model)["version"]
        resolved = self.resolve(
            model,
            alias=alias,
            version=version,
            target_device=target_device,
            precision=precision,
            format=format,
            max_size=max_size,
        )
        return self.download(resolved["artifact"], dest=dest, filename=filename, progress=progress, mode=mode)

    def download(self, artifact, *, dest=".", filename=None, progress=None, mode="redirect"):
        """Download one artifact (its dict or id); see ``pull``. ``mode="redirect"`` fetches the
        bytes from S3 through a presigned URL when the registry offers one, ``"proxy"`` through
        the registry."""
        if not isinstance(artifact, dict):
            artifact = self.artifact(artifact)
        return transfer.download(self, artifact, dest, filename=filename, progress=progress, mode=mode)

    # --- Geti --------------------------------------------------------------------------------

    def geti_projects(self, *, limit=None):
        return self._pages("geti/projects/", {"page_size": 100}, limit)

    def geti_project(self, project_id):
        return self._json("GET", f"geti/projects/{_segment(project_id)}/")

    def geti_import(self, project_id, optimized_model_ids=None):
        """Start importing a Geti project's optimized models (all of them when no ids are given);
        returns the import jobs. Follow them with ``wait_for_imports``."""
        project = self.geti_project(project_id)
        wanted = set(map(str, optimized_model_ids or []))
        models = [
            {"group_id": group["id"], "model_id": model["id"], "optimized_model_id": optimized["id"]}
            for group in project.get("model_groups", [])
            for model in group.get("models", [])
            for optimized in model.get("optimized_models", [])
            if not wanted or str(optimized["id"]) in wanted
        ]
        missing = wanted - {m["optimized_model_id"] for m in models}
        if missing or not models:
            raise NotFound(
                f"Project {project_id} has no optimized model {', '.join(sorted(missing))}."
                if missing
                else f"Project {project_id} has no optimized models.",
                status=404,
                code="not_found",
            )
        return self._json("POST", "geti/imports/", json={"project_id": project_id, "models": models})["jobs"]

    def import_jobs(self, ids):
        return list(self._pages("geti/imports/", {"id": ",".join(map(str, ids))}))

    def wait_for_imports(self, jobs, *, progress=None, poll=1.0, timeout=None):
        """Poll import jobs until none is queued or running; returns them. ``progress(jobs)`` is
        called after each poll. Failed jobs are returned too (``state == "failed"``, ``error``)."""
        ids = [job["id"] if isinstance(job, dict) else job for job in jobs]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.import_jobs(ids)
            if progress:
                progress(current)
            if all(job["state"] not in ("queued", "running") for job in current):
                return current
            if deadline is not None and time.monotonic() > deadline:
                raise RegistryError(f"Imports still running after {timeout} s.", code="timeout")
            time.sleep(poll)


def _segment(value):
    return quote(str(value), safe="")


def _alias_path(model, alias):
    return f"registered-models/{_segment(model)}/aliases/{_segment(alias)}/"


def _query(params):
    """Keyword filters as query parameters: None dropped, booleans as true/false, lists joined."""
    query = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)) and key in ("precision", "id"):
            value = ",".join(map(str, value))
        elif isinstance(value, dict):
            value = json.dumps(value)
        query[key] = value
    return query
