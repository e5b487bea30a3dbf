"""The Intel-compatible API, driven the way Intel's clients drive it: `requests` against a live server.

Every test runs a real HTTP server (pytest-django's live_server) over the real database and the
S3 endpoint from conftest, and asserts status, body, and database and bucket state.
"""

import re

import pytest
import requests
from rest_framework.authtoken.models import Token

from models_app.models import Artifact, ModelVersion, RegisteredModel
from tests.conftest import bucket_keys, free_port, s3_storages, zip_bytes

ENTRY_KEYS = [
    "id",
    "name",
    "target_device",
    "created_date",
    "last_updated_date",
    "precision",
    "size",
    "version",
    "format",
    "origin",
    "file_url",
    "project_id",
    "project_name",
    "category",
    "target_device_type",
    "score",
    "overview",
    "optimization_capabilities",
    "labels",
    "architecture",
]
INTEL_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC$")
CONFLICT = "The requested action could not be completed due to a conflict with model '{}'."


def make_zip(*names):
    """A real zip as a Geti deployment or a user would upload it."""
    names = names or ("deployment/Detection/model/model.xml", "deployment/Detection/model/model.bin")
    return zip_bytes([(name, f"contents of {name}\n".encode() * 200) for name in names])


class IntelClient(requests.Session):
    """A requests session on the live server's root, like an Intel client pointed at MR_URL."""

    def __init__(self, base_url, token=None):
        super().__init__()
        self.base_url = base_url
        if token:
            self.headers["Authorization"] = f"Token {token}"

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.base_url + url, *args, **kwargs)

    def register(self, content=None, filename="m.zip", content_type="application/zip", **fields):
        """POST /models as Intel's docs show: curl -F 'file=@m.zip;type=application/zip' -F name=..."""
        data = {"name": "person-detection", "version": "1", **fields}
        part = (filename, content if content is not None else make_zip(), content_type)
        if content_type is None:
            part = part[:2]
        return self.post("/models", data=data, files={"file": part})


@pytest.fixture
def intel(live_server, user, bucket):
    """An Intel client authenticated with an API token of a user who may write."""
    with IntelClient(live_server.url, Token.objects.create(user=user).key) as client:
        yield client


@pytest.fixture
def anonymous(live_server, bucket):
    with IntelClient(live_server.url) as client:
        yield client


def error_message(response):
    assert response.headers["Content-Type"] == "application/json", response.text
    return response.json()["error"]["message"]


# Round trip


def test_an_intel_client_can_upload_find_download_update_and_delete_a_zip(intel, bucket):
    content = make_zip()
    response = intel.register(
        content,
        version="2",
        precision="FP16",
        category="Detection",
        architecture="YOLOX",
        labels="['person', 'car']",
        score="0.87",
        overview='{"kind": "detector", "ready": true, "notes": null}',
    )
    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    entry_id = response.text
    artifact = Artifact.objects.get()
    assert entry_id == str(artifact.id) and artifact.external_id is None
    assert bucket_keys(bucket) == [artifact.file.name]

    found = intel.get("/models", params={"name": "PERSON", "version": "2", "precision": "fp16"})
    assert found.status_code == 200
    [entry] = found.json()
    assert (entry["id"], entry["name"], entry["version"], entry["precision"]) == (
        entry_id,
        "person-detection",
        "2",
        ["fp16"],
    )
    assert entry["labels"] == ["person", "car"]
    assert entry["overview"] == {"kind": "detector", "ready": True, "notes": None}
    assert entry["score"] == 0.87 and entry["size"] == len(content)

    download = intel.get(f"/models/{entry_id}/files")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/zip"
    assert download.headers["Content-Disposition"] == 'attachment; filename="m.zip"'
    assert download.content == content

    updated = intel.put(f"/models/{entry_id}", data={"category": "Detection_Classification", "score": "0.9"})
    assert updated.status_code == 200 and updated.json() == {"status": "completed"}
    entry = intel.get(f"/models/{entry_id}").json()
    assert (entry["category"], entry["score"]) == ("Detection_Classification", 0.9)

    deleted = intel.delete(f"/models/{entry_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert intel.get(f"/models/{entry_id}").status_code == 404
    assert not Artifact.objects.exists()
    assert bucket_keys(bucket) == []


def test_health_answers_ok(anonymous):
    response = anonymous.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# GET /models


def test_an_entry_has_intels_twenty_fields_in_intels_order_and_types(intel, bucket, s3_bucket_name):
    entry_id = intel.register(
        target_device="gpu",
        target_device_type="discrete",
        project_id="p" * 24,
        project_name="Shelf",
        origin="Geti",
        format="openvino",
        optimization_capabilities='{"is_nncf_supported": false}',
    ).text
    [entry] = intel.get("/models").json()
    assert list(entry) == ENTRY_KEYS
    assert entry["id"] == entry_id
    assert entry["target_device"] == "GPU" and entry["target_device_type"] == "discrete"
    assert entry["precision"] == ["fp32"]
    assert INTEL_DATE.match(entry["created_date"]) and INTEL_DATE.match(entry["last_updated_date"])
    assert entry["file_url"] == f"s3://{s3_bucket_name}/{Artifact.objects.get().file.name}"
    assert (entry["project_id"], entry["project_name"], entry["origin"]) == ("p" * 24, "Shelf", "Geti")
    assert entry["optimization_capabilities"] == {"is_nncf_supported": False}
    # Unset fields read back as Intel returned them.
    assert (entry["category"], entry["architecture"]) == (None, None)
    assert (entry["score"], entry["labels"], entry["overview"]) == (0.0, [], {})


def test_file_url_is_the_download_url_when_files_are_stored_locally(intel, local_storage):
    entry_id = intel.register().text
    entry = intel.get(f"/models/{entry_id}").json()
    assert entry["file_url"] == f"{intel.base_url}/models/{entry_id}/files"
    assert intel.get(entry["file_url"].removeprefix(intel.base_url)).status_code == 200


def test_an_overview_holding_an_integer_past_64_bits_is_listed_and_shown_as_it_is(intel):
    overview = '{"frames": 1180591620717411303424, "name": "détecteur"}'
    entry_id = intel.register(overview=overview, precision="FP16").text
    intel.register(overview=overview, precision="INT8")

    listed = intel.get("/models", params={"name": "person-detection"})
    shown = intel.get(f"/models/{entry_id}")

    assert listed.status_code == 200 and shown.status_code == 200
    assert [entry["overview"] for entry in listed.json()] == [{"frames": 2**70, "name": "détecteur"}] * 2
    assert shown.json()["overview"] == {"frames": 2**70, "name": "détecteur"}
    assert shown.json() in listed.json()


def test_the_list_is_empty_without_filters_and_entries(anonymous):
    response = anonymous.get("/models")
    assert response.status_code == 200
    assert response.json() == []


def test_the_list_refuses_unknown_query_keys(intel):
    response = intel.get("/models", params={"name": "x", "foo": "1", "Name": "y"})
    assert response.status_code == 422
    assert error_message(response) == "Invalid query parameter(s): foo, Name"


def test_the_list_answers_404_when_filters_match_nothing(intel):
    intel.register()
    response = intel.get("/models", params={"name": "segmentation"})
    assert response.status_code == 404
    assert error_message(response) == "Model(s) not found."


def test_filters_match_substrings_case_insensitively_version_exactly_and_together(intel):
    ids = {
        "a": intel.register(
            name="Person-Detection",
            version="1",
            precision="fp32",
            category="Detection",
            architecture="YOLOX-S",
            project_name="Retail shelf",
        ).text,
        "b": intel.register(
            name="person-detection",
            version="1",
            precision="int8",
            category="Detection",
            architecture="YOLOX-S",
            project_name="Retail shelf",
        ).text,
        "c": intel.register(name="vehicle-detection", version="10", precision="fp16", category="Detection").text,
    }

    def found(**params):
        response = intel.get("/models", params=params)
        return sorted(e["id"] for e in response.json()) if response.status_code == 200 else response.status_code

    assert found(name="DETECT") == sorted(ids.values())
    assert found(name="person") == sorted([ids["a"], ids["b"]])
    assert found(version="1") == sorted([ids["a"], ids["b"]])
    assert found(version="10") == [ids["c"]]
    assert found(precision="INT8") == [ids["b"]]
    assert found(precision="32") == [ids["a"]]
    assert found(architecture="yolox", project_name="SHELF", category="detect") == sorted([ids["a"], ids["b"]])
    assert found(name="vehicle", version="1") == 404


def test_filter_values_are_literal_text_not_patterns(intel):
    """Intel refused %, < and ' with a 400 and let _ act as a wildcard; we match them as text."""
    intel.register(name="o'neil_net")
    intel.register(name="oXneil-net")
    for value in ("o'neil_", "_net"):
        [entry] = intel.get("/models", params={"name": value}).json()
        assert entry["name"] == "o'neil_net"
    assert intel.get("/models", params={"name": "100%"}).status_code == 404


def test_the_list_returns_every_entry_past_intels_cap_of_100(intel, model_version):
    Artifact.objects.bulk_create(
        [
            Artifact(
                version=model_version, target_device=f"DEV{n}", file=f"artifacts/x/{n}.zip", size=n, sha256="0" * 64
            )
            for n in range(150)
        ]
    )
    entries = intel.get("/models").json()
    assert len(entries) == 150
    assert {e["target_device"] for e in entries} == {f"DEV{n}" for n in range(150)}


# POST /models


def test_a_client_chosen_id_is_kept_and_reachable(intel):
    entry_id = "my_model-0123456789"
    assert intel.register(id=entry_id).text == entry_id
    assert Artifact.objects.get().external_id == entry_id
    assert intel.get(f"/models/{entry_id}").json()["id"] == entry_id
    assert intel.get(f"/models/{entry_id}/files").status_code == 200
    assert intel.put(f"/models/{entry_id}", data={"category": "Detection"}).status_code == 200
    assert intel.delete(f"/models/{entry_id}").status_code == 204


@pytest.mark.parametrize("bad_id", ["short-id", "has/slash/0123456789", "space in the id 0123", "x" * 129])
def test_a_client_chosen_id_that_would_be_unreachable_is_refused(intel, bucket, bad_id):
    response = intel.register(id=bad_id)
    assert response.status_code == 400
    assert error_message(response).startswith("Invalid format for model ID.")
    assert not Artifact.objects.exists() and bucket_keys(bucket) == []


def test_it_refuses_a_duplicate_with_409_naming_the_existing_entry_and_stores_nothing(intel, bucket):
    first = intel.register(precision="fp16").text
    keys = bucket_keys(bucket)
    response = intel.register(make_zip("other.txt"), precision="FP16")
    assert response.status_code == 409
    assert error_message(response) == CONFLICT.format(first)
    assert Artifact.objects.count() == 1 and bucket_keys(bucket) == keys


def test_it_refuses_a_client_chosen_id_that_is_taken(intel, bucket):
    first = intel.register().text
    intel.register(id="taken-id-0123456789", precision="int8")
    for taken in ("taken-id-0123456789", first):
        response = intel.register(id=taken, precision="fp16")
        assert response.status_code == 409
        assert error_message(response) == CONFLICT.format(taken)
    assert Artifact.objects.count() == 2 and len(bucket_keys(bucket)) == 2


def test_the_same_name_and_version_at_another_precision_is_a_sibling_variant(intel):
    first = intel.register(precision="fp32", category="Detection").text
    second = intel.register(precision="int8", category="Detection").text
    assert first != second
    assert ModelVersion.objects.count() == 1
    assert sorted(e["precision"][0] for e in intel.get("/models", params={"version": "1"}).json()) == ["fp32", "int8"]


def test_a_variant_whose_shared_fields_differ_from_its_siblings_is_refused(intel, bucket):
    first = intel.register(precision="fp32", project_name="Shelf").text
    response = intel.register(precision="int8", project_name="Aisle")
    assert response.status_code == 409
    message = error_message(response)
    assert message.startswith(CONFLICT.format(first)) and "project_name" in message
    assert Artifact.objects.count() == 1 and len(bucket_keys(bucket)) == 1


def test_delete_and_post_again_replaces_an_entry_with_new_shared_fields(intel):
    first = intel.register(category="Detection", created_date="2025-01-01 10:00:00 UTC").text
    assert intel.delete(f"/models/{first}").status_code == 204
    response = intel.register(category="Segmentation", created_date="2025-02-02 10:00:00 UTC")
    assert response.status_code == 201, response.text
    entry = intel.get(f"/models/{response.text}").json()
    assert (entry["category"], entry["created_date"]) == ("Segmentation", "2025-02-02 10:00:00 UTC")


def test_post_refuses_unsupported_keys(intel, bucket):
    response = intel.register(accuracy="0.9", file_url="minio://x/y")
    assert response.status_code == 422
    assert error_message(response) == "Unsupported key(s) found: accuracy, file_url"
    assert not Artifact.objects.exists() and bucket_keys(bucket) == []


@pytest.mark.parametrize(
    "content_type, shown",
    [
        ("application/octet-stream", "application/octet-stream"),  # curl's default
        (None, "None"),  # a requests file part without a type
    ],
)
def test_post_refuses_a_file_part_that_is_not_declared_a_zip(intel, bucket, content_type, shown):
    response = intel.register(content_type=content_type)
    assert response.status_code == 422
    assert error_message(response) == f"Unsupported file type found: {shown}"
    assert bucket_keys(bucket) == []


@pytest.mark.parametrize("zip_type", ["multipart/x-zip", "application/x-zip-compressed", "application/x-zip"])
def test_post_accepts_every_zip_type_intel_accepted(intel, zip_type):
    assert intel.register(content_type=zip_type).status_code == 201


def test_post_refuses_an_unsupported_precision(intel, bucket):
    response = intel.register(precision="FP64")
    assert response.status_code == 400
    assert error_message(response) == "fp64 is not a supported precision."
    assert bucket_keys(bucket) == []


def test_post_accepts_the_registrys_extra_precisions(intel):
    entry_id = intel.register(precision="bf16").text
    assert intel.get(f"/models/{entry_id}").json()["precision"] == ["bf16"]


def test_post_requires_file_name_and_version(intel, live_server):
    response = intel.post("/models", data={"category": "Detection"})
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"file", "name", "version"}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("labels", "person, car", "labels is not a valid list."),
        ("labels", "{'a': 1}", "labels is not a valid list."),
        ("labels", "[1, 2]", "labels is not a valid list."),
        ("overview", "{'python': True}", "overview is not a valid JSON object."),
        ("overview", "[1]", "overview is not a valid JSON object."),
        ("optimization_capabilities", "nope", "optimization_capabilities is not a valid JSON object."),
    ],
)
def test_post_refuses_malformed_structured_fields(intel, bucket, field, value, message):
    response = intel.register(**{field: value})
    assert response.status_code == 422
    assert error_message(response) == message
    assert bucket_keys(bucket) == []


def test_post_refuses_a_score_that_is_not_a_number(intel):
    response = intel.register(score="high")
    assert response.status_code == 422
    assert "score" in response.json()["error"]["fields"]


def test_labels_may_be_a_python_or_json_list_and_size_is_the_real_size(intel):
    content = make_zip()
    entry_id = intel.register(content, labels='[{"name": "person", "color": "#ff0000"}]', size="5").text
    entry = intel.get(f"/models/{entry_id}").json()
    assert entry["labels"] == [{"name": "person", "color": "#ff0000"}]
    assert entry["size"] == len(content)


def test_a_json_overview_with_true_and_null_does_not_poison_later_reads_and_writes(intel):
    intel.register(overview='{"a": true, "b": false, "c": null}')
    assert intel.get("/models").status_code == 200
    assert intel.register(precision="int8").status_code == 201
    assert len(intel.get("/models").json()) == 2


def test_empty_fields_take_intels_defaults(intel):
    entry_id = intel.register(precision="", target_device="", score="", labels="").text
    entry = intel.get(f"/models/{entry_id}").json()
    assert (entry["precision"], entry["target_device"], entry["score"], entry["labels"]) == (["fp32"], "CPU", 0.0, [])


def test_a_client_given_created_date_is_returned_verbatim(intel):
    entry_id = intel.register(created_date="2025-03-01 12:00:00.123456 UTC").text
    assert intel.get(f"/models/{entry_id}").json()["created_date"] == "2025-03-01 12:00:00.123456 UTC"


# Authentication


def test_anonymous_writes_are_refused_by_default(anonymous, intel, bucket):
    response = anonymous.register()
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert not Artifact.objects.exists() and bucket_keys(bucket) == []
    entry_id = intel.register().text
    assert anonymous.put(f"/models/{entry_id}", data={"category": "x"}).status_code == 401
    assert anonymous.delete(f"/models/{entry_id}").status_code == 401
    assert anonymous.get(f"/models/{entry_id}").status_code == 200
    assert Artifact.objects.count() == 1


def test_a_trusted_deployment_may_accept_anonymous_writes_as_intel_did(anonymous, settings):
    settings.REGISTRY_INTEL_COMPAT_ANONYMOUS_WRITES = True
    entry_id = anonymous.register().text
    assert Artifact.objects.get().created_by is None
    assert anonymous.put(f"/models/{entry_id}", data={"category": "x"}).status_code == 200
    assert anonymous.delete(f"/models/{entry_id}").status_code == 204


def test_a_user_without_model_permissions_cannot_write(live_server, django_user_model, bucket):
    reader = django_user_model.objects.create_user("bob", password="pw-bob")
    with IntelClient(live_server.url, Token.objects.create(user=reader).key) as client:
        assert client.register().status_code == 403
    assert not Artifact.objects.exists()


# GET /models/{id}


def test_get_answers_404_for_an_unknown_id_and_400_for_a_malformed_one(intel):
    missing = intel.get("/models/0123456789abcdef0123")
    assert missing.status_code == 404
    assert error_message(missing) == "Model not found."
    malformed = intel.get("/models/short")
    assert malformed.status_code == 400
    assert error_message(malformed).startswith("Invalid format for model ID.")


# PUT /models/{id}


def test_a_shared_field_updated_through_one_entry_shows_on_its_sibling_variants(intel):
    first = intel.register(precision="fp32").text
    second = intel.register(precision="int8").text
    assert (
        intel.put(f"/models/{first}", data={"architecture": "YOLOX-L", "labels": "['a']", "score": "0.5"}).status_code
        == 200
    )
    sibling = intel.get(f"/models/{second}").json()
    assert (sibling["architecture"], sibling["labels"]) == ("YOLOX-L", ["a"])
    assert sibling["score"] == 0.0  # a variant's own field stays its own
    assert intel.get(f"/models/{first}").json()["score"] == 0.5


def test_put_accepts_urlencoded_multipart_and_json_bodies(intel):
    entry_id = intel.register().text
    assert intel.put(f"/models/{entry_id}", data={"category": "A"}).status_code == 200
    assert intel.put(f"/models/{entry_id}", files={"category": (None, "B")}).status_code == 200
    assert intel.put(f"/models/{entry_id}", json={"category": "C", "labels": ["x"]}).status_code == 200
    entry = intel.get(f"/models/{entry_id}").json()
    assert (entry["category"], entry["labels"]) == ("C", ["x"])


def test_put_can_set_values_intel_could_not(intel):
    """Intel dropped falsy values, so a score of 0 or an empty list could never be set."""
    entry_id = intel.register(score="0.7", labels="['a']").text
    assert intel.put(f"/models/{entry_id}", data={"score": "0", "labels": "[]"}).status_code == 200
    entry = intel.get(f"/models/{entry_id}").json()
    assert (entry["score"], entry["labels"]) == (0.0, [])


def test_put_sets_created_date_and_moves_last_updated_date(intel):
    entry_id = intel.register().text
    before = intel.get(f"/models/{entry_id}").json()
    assert intel.put(f"/models/{entry_id}", data={"created_date": "2024-12-24 08:00:00 UTC"}).status_code == 200
    after = intel.get(f"/models/{entry_id}").json()
    assert after["created_date"] == "2024-12-24 08:00:00 UTC"
    assert after["last_updated_date"] > before["last_updated_date"]


def test_put_without_a_supported_field_is_a_400(intel):
    entry_id = intel.register().text
    for body in ({}, {"colour": "red"}, {"category": ""}):
        response = intel.put(f"/models/{entry_id}", data=body)
        assert response.status_code == 400
        assert error_message(response) == (
            "Invalid request. Check the request body and ensure at least 1 supported field is provided."
        )


def test_put_validates_precision_which_intel_did_not(intel):
    entry_id = intel.register().text
    response = intel.put(f"/models/{entry_id}", data={"precision": "half"})
    assert response.status_code == 400
    assert error_message(response) == "half is not a supported precision."
    assert intel.put(f"/models/{entry_id}", data={"precision": "int4"}).status_code == 200
    assert intel.get(f"/models/{entry_id}").json()["precision"] == ["int4"]


def test_put_answers_404_for_an_unknown_id(intel):
    response = intel.put("/models/0123456789abcdef0123", data={"category": "x"})
    assert response.status_code == 404
    assert error_message(response) == "Model not found."


def test_put_refuses_to_turn_an_entry_into_a_duplicate_of_its_sibling(intel):
    first = intel.register(precision="fp32").text
    second = intel.register(precision="int8").text
    response = intel.put(f"/models/{second}", data={"precision": "FP32", "category": "ignored"})
    assert response.status_code == 409
    assert error_message(response) == CONFLICT.format(first)
    assert Artifact.objects.get(pk=second).precision == "INT8"
    assert ModelVersion.objects.get().category == ""  # nothing of the request was applied


def test_put_with_a_new_name_and_version_moves_the_entry(intel):
    entry_id = intel.register(category="Detection", labels="['person']").text
    response = intel.put(f"/models/{entry_id}", data={"name": "people-finder", "version": "7"})
    assert response.status_code == 200
    entry = intel.get(f"/models/{entry_id}").json()
    assert (entry["name"], entry["version"], entry["category"], entry["labels"]) == (
        "people-finder",
        "7",
        "Detection",
        ["person"],
    )
    assert intel.get(f"/models/{entry_id}/files").status_code == 200
    assert RegisteredModel.objects.filter(name="people-finder").exists()


def test_put_refuses_a_move_onto_an_existing_variant(intel):
    first = intel.register(version="1").text
    second = intel.register(version="2").text
    response = intel.put(f"/models/{second}", data={"version": "1"})
    assert response.status_code == 409
    assert error_message(response) == CONFLICT.format(first)
    assert Artifact.objects.get(pk=second).version.version == "2"


# DELETE /models/{id} and GET /models/{id}/files


def test_delete_and_download_answer_404_for_an_unknown_id(intel):
    for response in (intel.delete("/models/0123456789abcdef0123"), intel.get("/models/0123456789abcdef0123/files")):
        assert response.status_code == 404
        assert error_message(response) == "Model not found."


def test_delete_reports_a_storage_outage_and_deletes_nothing(intel, settings, bucket):
    entry_id = intel.register().text
    settings.STORAGES = s3_storages(f"http://127.0.0.1:{free_port()}", "unreachable")
    response = intel.delete(f"/models/{entry_id}")
    assert response.status_code == 503
    assert error_message(response).startswith("The artifact storage is unavailable")
    assert Artifact.objects.filter(pk=entry_id).exists()
    assert len(bucket_keys(bucket)) == 1


def test_download_supports_ranges(intel):
    content = make_zip()
    entry_id = intel.register(content).text
    response = intel.get(f"/models/{entry_id}/files", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.headers["Content-Type"] == "application/zip"
    assert response.content == content[10:20]


# Paths


def test_other_paths_under_models_answer_json_errors(intel):
    response = intel.get("/models/0123456789abcdef0123/other")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert intel.patch("/models/0123456789abcdef0123").status_code == 405


def test_a_registered_model_named_like_an_id_keeps_its_page(intel):
    """The pages live at /m/<name>/, Intel's entries at /models/<id>."""
    entry_id = intel.register(name="0123456789abcdef0123").text
    page = intel.get("/m/0123456789abcdef0123/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert intel.get("/models/0123456789abcdef0123").status_code == 404
    assert intel.get(f"/models/{entry_id}").json()["name"] == "0123456789abcdef0123"
