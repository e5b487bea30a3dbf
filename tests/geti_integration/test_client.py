"""The Geti client against a fake Geti HTTP server on loopback (tests/geti_fake.py).

No database and no Django: the client is HTTP only.
"""

import hashlib
import io
import socket
import tracemalloc
import zipfile

import pytest

from geti_integration.client import GetiClient, GetiConfig, GetiConfigError, GetiError
from tests import geti_fake as fx
from tests.geti_fake import FakeGeti


@pytest.fixture
def geti():
    with FakeGeti() as fake:
        yield fake


def make_client(fake, sleeps=None, **overrides):
    """A client for ``fake`` with tiny back-off; ``sleeps`` records waits instead of sleeping."""
    options = {"host": fake.url, "token": fake.token, "retries": 2, "backoff": 0.01, "max_backoff": 5.0, **overrides}
    kwargs = {} if sleeps is None else {"sleep": sleeps.append}
    return GetiClient(GetiConfig(**options), **kwargs)


@pytest.fixture
def client(geti):
    with make_client(geti) as client:
        yield client


class HashingSink:
    """A write-only file object that keeps only a digest and a byte count."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


GETI_ENV = {
    "GETI_HOST": "https://geti.example.com/",
    "GETI_TOKEN": "geti_pat_secret",
    "GETI_SERVER_API_VERSION": "v1",
    "GETI_ORGANIZATION_ID": "org-1",
    "GETI_WORKSPACE_ID": "ws-1",
    "GETI_SERVER_SSL_VERIFY": "false",
}


# --- configuration --------------------------------------------------------------------------------


def test_integration_is_off_when_host_is_unset():
    assert GetiConfig.from_env({}) is None


def test_integration_is_off_when_host_is_empty():
    assert GetiConfig.from_env({"GETI_HOST": "  ", "GETI_TOKEN": "x"}) is None


def test_from_env_reads_every_variable():
    config = GetiConfig.from_env(GETI_ENV)

    assert config == GetiConfig(
        host="https://geti.example.com",
        token="geti_pat_secret",
        api_version="v1",
        organization_id="org-1",
        workspace_id="ws-1",
        verify=False,
    )


def test_from_env_defaults_to_api_v1_verified_tls_and_discovery():
    config = GetiConfig.from_env(
        {"GETI_HOST": "https://geti", "GETI_TOKEN": "t", "GETI_ORGANIZATION_ID": "", "GETI_WORKSPACE_ID": ""}
    )

    assert (config.api_version, config.verify, config.organization_id, config.workspace_id) == ("v1", True, None, None)


def test_from_env_adds_https_to_a_bare_host_name():
    assert GetiConfig.from_env({"GETI_HOST": "geti.local", "GETI_TOKEN": "t"}).host == "https://geti.local"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("true", True),
        ("1", True),
        ("YES", True),
        ("", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_ssl_verify_accepts_boolean_words(value, expected):
    assert GetiConfig.from_env({**GETI_ENV, "GETI_SERVER_SSL_VERIFY": value}).verify is expected


def test_ssl_verify_accepts_a_ca_bundle_path(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")

    assert GetiConfig.from_env({**GETI_ENV, "GETI_SERVER_SSL_VERIFY": str(bundle)}).verify == str(bundle)


def test_ssl_verify_rejects_a_value_that_is_neither_bool_nor_file():
    with pytest.raises(GetiConfigError, match="GETI_SERVER_SSL_VERIFY") as excinfo:
        GetiConfig.from_env({**GETI_ENV, "GETI_SERVER_SSL_VERIFY": "maybe"})

    assert isinstance(excinfo.value, ValueError)


def test_from_env_requires_a_token_when_host_is_set():
    with pytest.raises(GetiConfigError, match="GETI_TOKEN"):
        GetiConfig.from_env({"GETI_HOST": "https://geti"})


def test_config_repr_does_not_show_the_token():
    assert "geti_pat_secret" not in repr(GetiConfig.from_env(GETI_ENV))


# --- discovery and authentication -----------------------------------------------------------------


def test_it_discovers_organization_and_workspace_once(geti, client):
    client.list_projects()
    client.list_projects()

    assert (client.organization_id(), client.workspace_id()) == (geti.org_id, geti.workspace_id)
    assert len(geti.requests_to("/personal_access_tokens/organization")) == 1
    assert len(geti.requests_to(f"/organizations/{geti.org_id}/workspaces")) == 1


def test_it_uses_configured_ids_without_asking(geti):
    with make_client(geti, organization_id=geti.org_id, workspace_id=geti.workspace_id) as client:
        client.get_project(fx.WIDGETS)

    assert [r.path for r in geti.requests] == [f"{geti.workspace_path}/projects/{fx.WIDGETS}"]


def test_it_picks_the_first_workspace_when_there_are_several(geti, client):
    geti.workspaces.append({"id": "ffffffff-0000-4000-8000-000000000000", "name": "Other"})

    assert client.workspace_id() == geti.workspace_id


def test_it_sends_the_token_in_x_api_key(geti, client):
    client.get_project(fx.WIDGETS)

    assert {r.headers.get("x-api-key") for r in geti.requests} == {geti.token}


def test_wrong_token_raises_401_instead_of_returning_no_projects(geti):
    with make_client(geti, token="geti_pat_wrong") as client:
        with pytest.raises(GetiError) as excinfo:
            client.list_projects()

    assert excinfo.value.status == 401
    assert excinfo.value.message == "Invalid authorization token"


# --- projects -------------------------------------------------------------------------------------


def test_list_projects_pages_through_more_than_100_projects():
    with FakeGeti(project_count=230) as geti, make_client(geti) as client:
        projects = client.list_projects()
        pages = geti.requests_to(f"{geti.workspace_path}/projects")

    assert sorted(p.id for p in projects) == sorted(geti.projects)
    assert [(r.query["limit"], r.query["skip"]) for r in pages] == [
        (["100"], ["0"]),
        (["100"], ["100"]),
        (["100"], ["200"]),
    ]


def test_list_projects_stops_at_project_counts_despite_next_page():
    with FakeGeti(project_count=200) as geti, make_client(geti) as client:
        projects = client.list_projects()

    assert len(projects) == 200
    assert len(geti.requests_to(f"{geti.workspace_path}/projects")) == 2


def test_list_projects_returns_pipeline_tasks_and_labels(client):
    widgets = {p.id: p for p in client.list_projects()}[fx.WIDGETS]

    assert widgets.name == "Widgets"
    assert [t.task_type for t in widgets.tasks] == ["dataset", "detection"]
    assert [label["name"] for label in widgets.tasks[1].labels] == ["widget", "No object"]


def test_unknown_project_raises_404_with_geti_error_code(client):
    with pytest.raises(GetiError) as excinfo:
        client.get_project("6650a00000000000000fffff")

    assert (excinfo.value.status, excinfo.value.code) == (404, "project_not_found")
    assert "could not be found" in excinfo.value.message


def test_malformed_id_raises_400_bad_request(client):
    with pytest.raises(GetiError) as excinfo:
        client.get_project("not-an-object-id")

    assert (excinfo.value.status, excinfo.value.code) == (400, "bad_request")


def test_an_id_cannot_escape_its_path_segment(geti, client):
    with pytest.raises(GetiError):
        client.get_project("../../../product_info")

    assert geti.requests[-1].path.endswith("/projects/../../../product_info")  # one segment, quoted


# --- models ---------------------------------------------------------------------------------------


def test_list_model_groups_returns_base_model_summaries(client):
    groups = {g.id: g for g in client.list_model_groups(fx.WIDGETS)}

    assert set(groups) == {fx.WIDGETS_GROUP, fx.PURGED_GROUP}
    model = groups[fx.WIDGETS_GROUP].models[0]
    assert (model.id, model.version, model.active_model, model.optimized_models) == (fx.WIDGETS_MODEL, 1, True, [])


@pytest.mark.parametrize("shape", ["items", "list"])
def test_list_model_groups_accepts_old_server_shapes(shape):
    with FakeGeti(model_groups_shape=shape) as geti, make_client(geti) as client:
        groups = client.list_model_groups(fx.CELLS)

    assert [g.id for g in groups] == [fx.CELLS_GROUP]


def test_get_model_includes_every_optimized_format(client):
    model = client.get_model(fx.WIDGETS, fx.WIDGETS_GROUP, fx.WIDGETS_MODEL)

    assert [(o.model_format, o.precision, o.optimization_type, o.has_xai_head) for o in model.optimized_models] == [
        ("OpenVINO", ["FP16"], "MO", False),
        ("OpenVINO", ["INT8"], "POT", False),
        ("OpenVINO", ["FP32"], "MO", False),
        ("OpenVINO", ["FP32"], "MO", True),
        ("ONNX", ["FP32"], "ONNX", False),
    ]


def test_get_optimized_model_returns_that_variant(client):
    optimized = client.get_optimized_model(fx.WIDGETS, fx.WIDGETS_GROUP, fx.WIDGETS_INT8)

    assert (optimized.id, optimized.name, optimized.precision, optimized.base_model_id, optimized.model_status) == (
        fx.WIDGETS_INT8,
        "YOLOX-TINY OpenVINO INT8",
        ["INT8"],
        fx.WIDGETS_MODEL,
        "SUCCESS",
    )


def test_unknown_model_raises_404_model_not_found(client):
    with pytest.raises(GetiError) as excinfo:
        client.get_model(fx.WIDGETS, fx.WIDGETS_GROUP, "6650a00000000000000fffff")

    assert (excinfo.value.status, excinfo.value.code) == (404, "model_not_found")


@pytest.mark.parametrize(
    "project_id, task_types, optimized_count",
    [
        (fx.WIDGETS, ["detection"], 6),
        (fx.CELLS, ["instance_segmentation"], 4),
        (fx.SCRATCHES, ["anomaly"], 3),
        (fx.PARKING, ["detection", "classification"], 2),
    ],
)
def test_a_filled_tree_covers_every_task_type(client, project_id, task_types, optimized_count):
    project = client.fill_tree(client.get_project(project_id))

    assert project.task_types == task_types
    optimized = [o for g in project.model_groups for m in g.models for o in m.optimized_models]
    assert len(optimized) == optimized_count
    assert all(o.size and o.model_status == "SUCCESS" for o in optimized)


def test_a_filled_tree_keeps_purged_flag_and_active_model(client):
    project = client.fill_tree(client.get_project(fx.WIDGETS))
    models = {m.id: m for g in project.model_groups for m in g.models}

    assert (models[fx.WIDGETS_MODEL].is_purged, models[fx.WIDGETS_MODEL].active_model) == (False, True)
    assert (models[fx.PURGED_MODEL].is_purged, models[fx.PURGED_MODEL].active_model) == (True, False)
    assert models[fx.PURGED_MODEL].optimized_models[0].is_purged


def test_anomaly_model_without_score_uses_its_global_score(client):
    model = client.get_model(fx.SCRATCHES, fx.SCRATCHES_GROUP, fx.SCRATCHES_MODEL)

    assert model.score == 0.87
    assert model.performance == {"local_score": 0.62, "global_score": 0.87}


# --- failures and retries -------------------------------------------------------------------------


def test_503_not_ready_is_retried_until_ok(geti):
    geti.fail_next(503, times=2)
    sleeps = []

    with make_client(geti, sleeps) as client:
        project = client.get_project(fx.WIDGETS)

    assert project.id == fx.WIDGETS
    assert sleeps == [0.01, 0.02]


def test_503_that_persists_raises_after_the_retries(geti):
    geti.fail_next(503, times=10)

    with make_client(geti, []) as client, pytest.raises(GetiError) as excinfo:
        client.list_projects()

    assert (excinfo.value.status, excinfo.value.code) == (503, "service_unavailable")
    assert len(geti.requests) == 3


def test_429_waits_as_long_as_retry_after_says(geti):
    geti.fail_next(429, retry_after=3)
    sleeps = []

    with make_client(geti, sleeps) as client:
        client.list_projects()

    assert sleeps == [3.0]


def test_retry_after_is_capped_by_max_backoff(geti):
    geti.fail_next(429, retry_after=3600)
    sleeps = []

    with make_client(geti, sleeps, max_backoff=2.0) as client:
        client.list_projects()

    assert sleeps == [2.0]


def test_connection_refused_raises_after_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    sleeps = []
    config = GetiConfig(host=f"http://127.0.0.1:{port}", token="t", retries=2, backoff=0.01)

    with GetiClient(config, sleep=sleeps.append) as client, pytest.raises(GetiError) as excinfo:
        client.list_projects()

    assert (excinfo.value.status, excinfo.value.code) == (None, "connection_error")
    assert len(sleeps) == 2


def test_html_login_page_raises_instead_of_parsing(geti, client):
    geti.queue_response(200, "<html><body>Sign in</body></html>", content_type="text/html")

    with pytest.raises(GetiError) as excinfo:
        client.list_projects()

    assert excinfo.value.code == "unexpected_html"


def test_invalid_json_raises(geti, client):
    geti.queue_response(200, "{not json")

    with pytest.raises(GetiError) as excinfo:
        client.list_projects()

    assert (excinfo.value.status, excinfo.value.code) == (200, "invalid_json")


def test_a_redirect_is_not_followed(geti, client):
    geti.queue_response(302, "", headers={"Location": "https://elsewhere.example/login"})

    with pytest.raises(GetiError) as excinfo:
        client.list_projects()

    assert excinfo.value.status == 302
    assert len(geti.requests) == 1


def test_geti_error_message_shows_status_and_code():
    assert str(GetiError("Nope", status=404, code="project_not_found")) == "Nope (HTTP 404, project_not_found)"


# --- TLS ------------------------------------------------------------------------------------------


@pytest.fixture
def system_ca_bundle_in_env(monkeypatch):
    """REQUESTS_CA_BUNDLE set, as in many containers; requests lets it override Session.verify."""
    certifi = pytest.importorskip("certifi")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())


def test_a_ca_bundle_path_verifies_a_self_signed_server(system_ca_bundle_in_env):
    pytest.importorskip("cryptography")
    with FakeGeti(tls=True) as geti, make_client(geti, verify=geti.ca_path) as client:
        assert client.get_project(fx.WIDGETS).id == fx.WIDGETS


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_accepts_a_self_signed_server(system_ca_bundle_in_env):
    pytest.importorskip("cryptography")
    with FakeGeti(tls=True) as geti, make_client(geti, verify=False) as client:
        assert client.get_project(fx.WIDGETS).id == fx.WIDGETS


def test_default_verification_rejects_a_self_signed_server():
    pytest.importorskip("cryptography")
    with FakeGeti(tls=True) as geti, make_client(geti) as client, pytest.raises(GetiError) as excinfo:
        client.list_projects()

    assert excinfo.value.code == "tls_error"


# --- downloads ------------------------------------------------------------------------------------


def test_download_of_an_openvino_model_is_byte_exact(geti, client):
    buffer = io.BytesIO()

    written = client.download_model(fx.WIDGETS, fx.WIDGETS_GROUP, fx.WIDGETS_MODEL, fx.WIDGETS_FP16, buffer)

    expected = geti.export_digest(fx.WIDGETS_FP16)
    assert (written, hashlib.sha256(buffer.getvalue()).hexdigest()) == (expected.size, expected.sha256)
    assert zipfile.ZipFile(buffer).namelist() == ["openvino.xml", "openvino.bin", "config.json"]


def test_download_asks_for_model_only(geti, client):
    client.download_model(fx.WIDGETS, fx.WIDGETS_GROUP, fx.WIDGETS_MODEL, fx.WIDGETS_ONNX, io.BytesIO())

    assert geti.requests[-1].query == {"model_only": ["true"]}


def test_download_without_optimized_id_gets_the_base_model(geti, client):
    buffer = io.BytesIO()

    client.download_model(fx.CELLS, fx.CELLS_GROUP, fx.CELLS_MODEL, None, buffer)

    assert hashlib.sha256(buffer.getvalue()).hexdigest() == geti.model_export_digest(fx.CELLS_MODEL).sha256
    assert zipfile.ZipFile(buffer).namelist() == ["weights.pth"]


def test_download_reports_progress_up_to_the_total(geti, client):
    geti.set_size(fx.CELLS_FP32, 3 << 20)
    calls = []

    written = client.download_model(
        fx.CELLS,
        fx.CELLS_GROUP,
        fx.CELLS_MODEL,
        fx.CELLS_FP32,
        io.BytesIO(),
        chunk_size=1 << 20,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert len(calls) >= 3
    assert calls[-1] == (written, written)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_download_of_a_purged_model_raises_422(client):
    with pytest.raises(GetiError) as excinfo:
        client.download_model(fx.WIDGETS, fx.PURGED_GROUP, fx.PURGED_MODEL, fx.PURGED_FP16, io.BytesIO())

    assert (excinfo.value.status, excinfo.value.code) == (422, "model_purging_not_possible")


def test_download_memory_does_not_grow_with_file_size(geti, client):
    geti.set_size(fx.WIDGETS_FP32, 200 << 20)
    expected = geti.export_digest(fx.WIDGETS_FP32)
    sink = HashingSink()

    tracemalloc.start()
    try:
        client.download_model(
            fx.WIDGETS, fx.WIDGETS_GROUP, fx.WIDGETS_MODEL, fx.WIDGETS_FP32, sink, chunk_size=256 * 1024
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (sink.size, sink.sha256.hexdigest()) == (expected.size, expected.sha256)
    assert expected.size > 200 << 20
    assert peak < 8 << 20  # the fake server's and client's chunks, nothing proportional to the file


# --- deployments ----------------------------------------------------------------------------------


def widgets_fp16():
    return [{"model_id": fx.WIDGETS_FP16, "model_group_id": fx.WIDGETS_GROUP}]


def test_deployment_that_takes_several_polls_ends_done(geti, client):
    geti.deployment_polls = 3
    deployment = client.prepare_deployment(fx.WIDGETS, widgets_fp16())

    done = client.wait_for_deployment(fx.WIDGETS, deployment.id, deadline_seconds=10, poll_interval=0.001)

    assert (deployment.state, done.state, done.progress) == ("PREPARING", "DONE", 100.0)
    assert len(geti.requests_to(f"/code_deployments/{deployment.id}")) == 4


def test_deployment_that_fails_raises(client):
    deployment = client.prepare_deployment(fx.CELLS, [{"model_id": fx.CELLS_INT8, "model_group_id": fx.CELLS_GROUP}])

    with pytest.raises(GetiError) as excinfo:
        client.wait_for_deployment(fx.CELLS, deployment.id, deadline_seconds=10, poll_interval=0.001)

    assert excinfo.value.code == "deployment_failed"


def test_deployment_still_preparing_at_the_deadline_raises(geti, client):
    geti.deployment_polls = 10_000
    deployment = client.prepare_deployment(fx.WIDGETS, widgets_fp16())

    with pytest.raises(GetiError) as excinfo:
        client.wait_for_deployment(fx.WIDGETS, deployment.id, deadline_seconds=0.05, poll_interval=0.01)

    assert excinfo.value.code == "deadline_exceeded"


def test_deployment_of_an_onnx_model_is_refused(client):
    with pytest.raises(GetiError) as excinfo:
        client.prepare_deployment(fx.WIDGETS, [{"model_id": fx.WIDGETS_ONNX, "model_group_id": fx.WIDGETS_GROUP}])

    assert excinfo.value.status == 400


def test_done_deployment_downloads_byte_exact(geti, client):
    geti.deployment_polls = 0
    deployment = client.prepare_deployment(fx.WIDGETS, widgets_fp16())
    client.wait_for_deployment(fx.WIDGETS, deployment.id, poll_interval=0.001)
    buffer = io.BytesIO()

    written = client.download_deployment(fx.WIDGETS, deployment.id, buffer)

    expected = geti.deployment_digest(deployment.id)
    assert (written, hashlib.sha256(buffer.getvalue()).hexdigest()) == (expected.size, expected.sha256)
    assert "deployment/Detection/model/model.xml" in zipfile.ZipFile(buffer).namelist()
