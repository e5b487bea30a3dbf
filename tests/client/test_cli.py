"""The ``registry`` command, run through its installed console script against a live registry."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from registry_client import Registry, config

from models_app.models import Artifact, UploadSession
from tests import geti_fake as fx
from tests.geti_integration.conftest import geti, geti_off, immediate_tasks  # noqa: F401  (fixtures)

from .conftest import MiB, interrupted_push

pytestmark = pytest.mark.django_db(transaction=True)

REGISTRY = str(Path(sys.executable).parent / "registry")


@pytest.fixture
def run(live_server, token, bucket):
    """Run ``registry ARGS`` with the test's config and cache folders; returns the finished process."""

    def _run(*args, token=token, url=live_server.url, stdin=None):
        env = {**os.environ, "REGISTRY_URL": url}
        if token:
            env["REGISTRY_TOKEN"] = token
        return subprocess.run([REGISTRY, *args], env=env, capture_output=True, text=True, timeout=120, input=stdin)

    return _run


def test_login_stores_the_token_for_its_owner_only(run, token, client_home, live_server):
    done = run("login", "--url", live_server.url, "--token", token, token=None, url="")

    assert done.returncode == 0, done.stderr
    path = client_home / "config" / "config.json"
    assert json.loads(path.read_text()) == {"url": live_server.url, "token": token}
    assert path.stat().st_mode & 0o777 == 0o600
    # Later commands find the URL and token in the file.
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_URL", "REGISTRY_TOKEN")}
    listing = subprocess.run([REGISTRY, "ls", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and json.loads(listing.stdout) == []


def test_a_refused_token_fails_in_one_line(run, client_home, live_server):
    done = run("login", "--token", "wrong", token=None)

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == ["error: Invalid token. (401 authentication_failed)"]
    assert not (client_home / "config" / "config.json").exists()


def test_usage_errors_exit_with_2(run):
    assert run("push").returncode == 2
    assert run("frobnicate").returncode == 2


def test_push_ls_show_and_pull(run, model_file, tmp_path):
    path = model_file(3 * MiB)
    pushed = run(
        "push",
        str(path),
        "--model",
        "person-detection",
        "--version",
        "1",
        "--precision",
        "INT8",
        "--device",
        "NPU",
        "--format",
        "onnx",
        "--score",
        "0.9",
        "--label",
        "person",
        "--label",
        "car",
        "--json",
    )
    assert pushed.returncode == 0, pushed.stderr
    artifact = json.loads(pushed.stdout)
    assert artifact["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    row = Artifact.objects.with_version().get()
    assert (row.precision, row.target_device, row.format, row.version.labels) == (
        "INT8",
        "NPU",
        "onnx",
        ["person", "car"],
    )
    assert pushed.stderr == ""  # no progress bar when stderr is not a terminal

    listed = run("ls", "person-detection", "--precision", "int8", "--json")
    assert [a["id"] for a in json.loads(listed.stdout)] == [artifact["id"]]
    assert "person-detection" in run("ls").stdout
    assert json.loads(run("search", "person", "--json").stdout)[0]["id"] == artifact["id"]
    shown = json.loads(run("show", "person-detection:1", "--json").stdout)
    assert shown["version"]["version"] == "1" and [v["id"] for v in shown["variants"]] == [artifact["id"]]

    out = tmp_path / "models"
    first = run("pull", "person-detection:1", "--device", "NPU", "--precision", "INT8,FP16", "-o", str(out))
    assert first.returncode == 0, first.stderr
    assert (out / "detector.bin").read_bytes() == path.read_bytes() and "downloaded" in first.stdout
    again = run("pull", "person-detection:1", "--device", "NPU", "-o", str(out), "--json")
    assert json.loads(again.stdout)["downloaded"] is False and json.loads(again.stdout)["transferred"] == 0


def test_the_same_push_run_again_resumes_an_interrupted_upload(run, registry, model_file, small_parts, bucket):
    path = model_file(15 * MiB)
    args = {"model": "person-detection", "version": "1", "precision": "INT8"}
    interrupted_push(registry, path, 5 * MiB, **args)

    done = run("push", str(path), "--model", "person-detection", "--version", "1", "--precision", "INT8")

    assert done.returncode == 0, done.stderr
    assert UploadSession.objects.count() == 1 and UploadSession.objects.get().state == "completed"
    assert Artifact.objects.get().sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_push_cut_off_resumes_without_its_local_record(
    run, model_file, small_parts, bucket, client_home, storage_proxy
):
    path = model_file(20 * MiB)  # four parts of 5 MiB
    push = ["push", str(path), "--model", "person-detection", "--version", "1", "--parallel", "1"]
    storage_proxy.cut_after = 2  # storage refuses parts from the third on

    cut = run(*push)

    assert cut.returncode == 1 and "Storage refused part 3" in cut.stderr
    session = UploadSession.objects.get()
    listed = bucket.meta.client.list_parts(Bucket=bucket.name, Key=session.key, UploadId=session.upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    records = list((client_home / "cache" / "uploads").glob("*.json"))
    assert len(records) == 1
    records[0].unlink()
    storage_proxy.cut_after, storage_proxy.received = None, []

    done = run(*push)

    assert done.returncode == 0, done.stderr
    assert storage_proxy.received == [3, 4]  # parts 1 and 2 were not sent again
    artifact = Artifact.objects.get()
    assert artifact.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and artifact.size == 20 * MiB
    assert hashlib.sha256(bucket.Object(artifact.file.name).get()["Body"].read()).hexdigest() == artifact.sha256
    assert UploadSession.objects.get().state == "completed"
    assert list((client_home / "cache" / "uploads").glob("*.json")) == []


def test_server_errors_print_as_one_line_and_exit_1(run, model_file):
    missing = run("show", "nope")
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        "error: No RegisteredModel matches the given query. (404 not_found)"
    ]

    path = model_file(MiB)
    run("push", str(path), "--model", "m", "--version", "1")
    taken = run("push", str(path), "--model", "m", "--version", "1")
    assert taken.returncode == 1 and len(taken.stderr.strip().splitlines()) == 1 and "(409 conflict)" in taken.stderr

    wrong = run("push", str(path), "--model", "m", "--version", "2", "--sha256", "0" * 64)
    assert wrong.returncode == 1 and "sha256" in wrong.stderr


def test_alias_set_rollback_history_and_rm(run, model_file):
    for version in ("1", "2"):
        run("push", str(model_file(1000, name=f"{version}.bin")), "--model", "m", "--version", version)

    assert run("alias", "set", "m", "staging", "1").stdout == "m@staging -> 1\n"
    assert run("alias", "set", "m", "staging", "2", "--reason", "newer").stdout == "m@staging -> 2\n"
    assert run("alias", "rollback", "m", "staging").stdout == "m@staging -> 1\n"
    history = json.loads(run("alias", "history", "m", "staging", "--json").stdout)
    assert [e["action"] for e in history] == ["rollback", "move", "set"]

    assert run("rm", "m:1").returncode == 1  # the alias still points at it: 409
    assert run("alias", "rm", "m", "staging").returncode == 0
    assert run("rm", "m:1", "--yes").returncode == 0
    assert run("rm", "m").returncode == 1  # still has a version
    assert run("rm", "m", "--force").returncode == 0
    assert Artifact.objects.count() == 0


def test_the_stored_token_goes_only_to_the_registry_it_was_issued_for(client_home):
    config.save("https://registry.example.com", "abc")

    assert Registry().token == "abc" and Registry("https://registry.example.com/api/v1").token == "abc"
    assert Registry("http://other.example.com").token is None


def test_geti_import_follows_the_jobs_to_their_end(run, geti, immediate_tasks):  # noqa: F811
    done = run("geti", "import", fx.WIDGETS, "--model", fx.WIDGETS_INT8, "--json")

    assert done.returncode == 0, done.stderr
    jobs = json.loads(done.stdout)
    assert [(j["optimized_model_id"], j["state"]) for j in jobs] == [(fx.WIDGETS_INT8, "done")]
    assert Artifact.objects.get().sha256 == jobs[0]["artifact"]["sha256"]

    unknown = run("geti", "import", fx.WIDGETS, "--model", "nope")
    assert unknown.returncode == 1 and "has no optimized model nope" in unknown.stderr
