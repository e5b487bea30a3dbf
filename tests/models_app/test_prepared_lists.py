"""Prepared lists (models_app/api/prepared.py) answer exactly what the general path answers."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from models_app import services
from models_app.api import prepared
from models_app.lib import plans as plan_registry
from models_app.models import Artifact, ArtifactInspection, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

NAMES = ["person-detection", "100%_sure", "50%-off", "under_score", "Ünïcode-model", "plain"]


@pytest.fixture(autouse=True)
def _no_plans():
    plan_registry._plans.clear()
    yield
    plan_registry._plans.clear()


@pytest.fixture
def catalogue(user):
    """Models whose names hold LIKE wildcards, versions of every status, tags whose values hold
    colons, a creator, a derivation, and one model with more versions than a page."""
    models = {name: RegisteredModel.objects.create(name=name, tags={"team": name[:3]}) for name in NAMES}
    first = None
    for index, status in enumerate(["active", "deprecated", "archived", "active"]):
        version = ModelVersion.objects.create(
            registered_model=models["person-detection"],
            version=str(index + 1),
            status=status,
            tags={"precision": "FP16" if index % 2 else "INT8", "url": "http://x:1/a:b"},
            labels=["person"],
            # An integer past 64 bits, digits past a float's and text beyond ASCII, which JSON
            # decoders may read differently.
            overview={"mAP": 0.5 + index / 10, "frames": 2**70 + index, "ratio": 0.12345678901234567, "unit": "µs"},
            created_by=user if index % 2 else None,
            derived_from=first,
        )
        first = first or version
    # A time on the second, which ISO 8601 writes without a fraction.
    ModelVersion.objects.filter(pk=first.pk).update(created_at=timezone.now().replace(microsecond=0))
    for index in range(60):
        ModelVersion.objects.create(registered_model=models["plain"], version=f"v{index}", tags={"n": str(index % 3)})
    return models


URLS = [
    "/api/v1/versions/?registered_model=person-detection",
    "/api/v1/versions/?registered_model=person-detection&tag=precision:FP16",
    "/api/v1/versions/?registered_model=person-detection&tag=url:http://x:1/a:b",
    "/api/v1/versions/?registered_model=person-detection&tag=precision",
    "/api/v1/versions/?registered_model=person-detection&status=archived",
    "/api/v1/versions/?registered_model=person-detection&version=2",
    "/api/v1/versions/?registered_model=person-detection&tag=precision:INT8&tag=url",
    "/api/v1/versions/?registered_model=plain",
    "/api/v1/versions/?registered_model=plain&page_size=7&ordering=version",
    "/api/v1/versions/?registered_model=plain&tag=n:1&page=1",
    "/api/v1/versions/?registered_model=nope",
    "/api/v1/versions/?registered_model=p_ain",  # LIKE wildcards where SQLite compares with LIKE
    "/api/v1/versions/?registered_model=pla%25",
    "/api/v1/registered-models/?name=%25",
    "/api/v1/registered-models/?name=_",
    "/api/v1/registered-models/?name=%25_",
    "/api/v1/registered-models/?name=ünï",
    "/api/v1/registered-models/?name=DETECT",
    "/api/v1/registered-models/?ordering=name&page_size=2",
    "/api/v1/registered-models/?ordering=-version_count&page_size=50",
    "/api/v1/registered-models/?tag=team:per",
    "/api/v1/registered-models/",
]


@pytest.fixture
def variants(catalogue, user):
    """Variants of every kind of inspection: none yet, done and agreeing, done and contradicting
    the declared precision and format (warnings), failed, and one of an archived version."""
    versions = {v.version: v for v in catalogue["person-detection"].versions.all()}
    signature = {"inputs": [{"name": "x", "shape": [1, 3, "h", None], "element_type": "f32"}], "outputs": []}
    specs = [
        ("1", "FP32", "CPU", "openvino", 0.5, None),
        ("1", "INT8", "NPU", "onnx", 0.9, {"status": "done", "format": "onnx", "weight_precision": "INT8"}),
        ("1", "FP16", "GPU", "onnx", 0.7, {"status": "done", "format": "openvino", "weight_precision": "FP32"}),
        ("2", "INT8", "NPU", "onnx", 0.8, {"status": "failed", "reason": "not a model"}),
        ("3", "INT8", "NPU", "onnx", 0.95, None),  # archived
    ]
    made = []
    for index, (version, precision, device, fmt, score, inspection) in enumerate(specs):
        artifact = Artifact.objects.create(
            version=versions[version],
            precision=precision,
            target_device=device,
            format=fmt,
            score=score,
            size=index,
            sha256=f"{index:064x}",
            file=f"artifacts/{index}/model.bin",
            created_by=user if index % 2 else None,
        )
        if inspection:
            ArtifactInspection.objects.create(
                artifact=artifact, inspected_at=timezone.now(), signature=signature, ir_version=11, **inspection
            )
        made.append(artifact)
    return made


ARTIFACT_URLS = [
    "/api/v1/artifacts/",
    "/api/v1/artifacts/?precision=INT8&target_device=NPU&format=onnx&ordering=-score&page_size=50",
    "/api/v1/artifacts/?precision=int8&target_device=npu&format=ONNX",  # stored in one case
    "/api/v1/artifacts/?registered_model=PERSON-detection&version=1&ordering=score",
    "/api/v1/artifacts/?format=onnx&page_size=2",  # more than a page: counted and linked
    "/api/v1/artifacts/?target_device_type=Edge",
    "/api/v1/artifacts/?registered_model=p_rson-detection",
    "/api/v1/artifacts/?precision=fp1%25",
]


@pytest.mark.parametrize("url", ARTIFACT_URLS)
def test_a_prepared_page_of_artifacts_is_byte_for_byte_the_general_one(api_client, variants, settings, url):
    general = body(api_client, url, settings, False)
    assert general[0] == 200
    first, again = body(api_client, url, settings, True), body(api_client, url, settings, True)
    assert first == general and again == general
    plans = list(plan_registry._plans.values())
    assert len(plans) == 1 and isinstance(plans[0], prepared.Plan)


def test_a_prepared_page_of_artifacts_shows_each_kind_of_inspection(api_client, variants, settings):
    body(api_client, "/api/v1/artifacts/?ordering=score", settings, True)  # prepares
    rows = api_client.get("/api/v1/artifacts/?ordering=size").json()["results"]
    inspections = {row["size"]: row["inspection"] for row in rows}
    assert [inspections[i]["status"] for i in range(4)] == ["pending", "done", "done", "failed"]
    assert inspections[1]["warnings"] == [] and inspections[1]["inputs"][0]["shape"] == [1, 3, "h", None]
    assert inspections[2]["warnings"] == [
        "Declared format onnx, but the file is openvino.",
        "Declared precision FP16, but the weights are FP32.",
    ]
    assert "details" not in inspections[1] and inspections[3]["reason"] == "not a model"
    assert 4 not in inspections  # the archived version's variant is left out


def body(client, url, settings, enabled):
    settings.REGISTRY_PREPARED_LISTS = enabled
    response = client.get(url)
    return response.status_code, response.content, response.get("X-Count-Estimated")


@pytest.mark.parametrize("url", URLS)
def test_a_prepared_list_is_byte_for_byte_the_general_one(api_client, catalogue, settings, url):
    general = body(api_client, url, settings, False)
    assert general[0] == 200
    assert not plan_registry._plans
    first, again = body(api_client, url, settings, True), body(api_client, url, settings, True)
    assert first == general and again == general
    plans = list(plan_registry._plans.values())
    # SQLite is given a tag's key as a JSON path, a form of the value the prepared lists do not
    # rebuild: tag lists take the general path there.
    if "tag=" in url and connection.vendor == "sqlite":
        assert plans == [plan_registry.UNPREPARED]
    else:
        assert len(plans) == 1 and isinstance(plans[0], prepared.Plan)  # it was prepared, then reused


def test_like_wildcards_in_a_name_match_themselves(api_client, catalogue):
    names = lambda url: sorted(m["name"] for m in api_client.get(url).json()["results"])  # noqa: E731
    assert names("/api/v1/registered-models/?name=%25") == ["100%_sure", "50%-off"]
    assert names("/api/v1/registered-models/?name=%25_") == ["100%_sure"]
    assert names("/api/v1/registered-models/?name=r_s") == ["under_score"]


def test_more_rows_than_a_page_are_counted_and_linked(api_client, catalogue):
    data = api_client.get("/api/v1/versions/?registered_model=plain&page_size=25").json()
    assert data["count"] == 60 and len(data["results"]) == 25
    assert data["next"] == "http://testserver/api/v1/versions/?page=2&page_size=25&registered_model=plain"
    second = api_client.get(data["next"]).json()
    assert data["results"][-1]["version"] != second["results"][0]["version"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's")
def test_past_the_exact_limit_the_count_is_the_planners_estimate(api_client, catalogue, settings):
    settings.REGISTRY_EXACT_COUNT_LIMIT = 10
    response = api_client.get("/api/v1/versions/?registered_model=plain")
    assert response["X-Count-Estimated"] == "true"
    assert response.json()["count"] > 10


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's")
def test_past_the_exact_limit_the_rows_are_counted_once(api_client, catalogue, settings):
    settings.REGISTRY_EXACT_COUNT_LIMIT = 10
    url = "/api/v1/versions/?registered_model=plain"
    api_client.get(url)  # the kind's plan is made

    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(url)

    assert response["X-Count-Estimated"] == "true"
    explains = [q["sql"] for q in queries.captured_queries if (q["sql"] or "").startswith("EXPLAIN")]
    assert (len(queries), len(explains)) == (3, 1)  # the rows, their capped count, the estimate


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/versions/?registered_model=plain&search=v1",  # a parameter not listed
        "/api/v1/versions/?registered_model=plain&page=2",
        "/api/v1/versions/?registered_model=plain&ordering=description",  # not an ordering field
        "/api/v1/versions/?tag=n&tag=n:1&tag=n:2&tag=n:0",  # repeated past the bound
        "/api/v1/versions/?registered_model=",  # empty: the filter ignores it
        # The filters' form strips a value: surrounding spaces match as if they were not there.
        "/api/v1/versions/?registered_model=%20person-detection%20",
        "/api/v1/versions/?registered_model=person-detection&tag=precision:FP16%20",
        "/api/v1/registered-models/?name=%20detect",
        "/api/v1/versions/?registered_model=%20",  # nothing left once stripped: ignored
    ],
)
def test_other_requests_take_the_general_path(api_client, catalogue, settings, url):
    assert body(api_client, url, settings, True) == body(api_client, url, settings, False)
    assert not plan_registry._plans


def test_a_token_read_of_a_models_versions_costs_two_queries(catalogue, user):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.get("/api/v1/versions/?registered_model=plain")  # prepares
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/v1/versions/?registered_model=person-detection")
    assert response.status_code == 200 and response.json()["count"] == 3
    assert len(ctx.captured_queries) == 2  # the token (with the lockout count), the rows


def test_the_read_rule_still_applies(anon_client, catalogue, settings):
    settings.REGISTRY_REQUIRE_LOGIN = True
    response = anon_client.get("/api/v1/versions/?registered_model=plain")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_plans_are_bounded(api_client, catalogue, settings, monkeypatch):
    monkeypatch.setattr(plan_registry, "MAX_PLANS", 2)
    for size in range(1, 6):
        response = api_client.get(f"/api/v1/versions/?registered_model=plain&page_size={size}")
        assert response.status_code == 200 and len(response.json()["results"]) == size
    assert len(plan_registry._plans) == 2


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/registered-models/person-detection/versions/2/",
        "/api/v1/registered-models/person-detection/versions/3/",  # archived: still found by its name
        "/api/v1/registered-models/person-detection/versions/9/",  # 404
        "/api/v1/registered-models/100%25_sure/versions/1/",  # 404 in a model whose name holds wildcards
        "/api/v1/registered-models/plain/versions/v59/",
        "/api/v1/registered-models/nope/versions/1/",
    ],
)
def test_one_version_by_name_is_byte_for_byte_the_general_one(api_client, catalogue, settings, url):
    general = body(api_client, url, settings, False)
    assert general[0] in (200, 404)
    assert body(api_client, url, settings, True) == general
    assert body(api_client, url, settings, True) == general
    assert [type(plan) for plan in plan_registry._plans.values()] == [prepared.ObjectPlan]


def prepared_statements():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.parametrize("enabled", [True, False])
def test_postgresql_plans_the_repeated_statements_once(catalogue, user, settings, enabled):
    settings.DATABASE_PREPARED_STATEMENTS = enabled
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    for name in ("plain", "person-detection", "plain"):
        assert client.get(f"/api/v1/versions/?registered_model={name}").status_code == 200
    statements = prepared_statements()
    found = [s for s in statements if "authtoken_token" in s or "models_app_modelversion" in s]
    assert len(found) == (3 if enabled else 0), statements  # the token, the rows, the count


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_statement_postgresql_refuses_sends_its_kind_to_the_general_path(api_client, catalogue, settings):
    url = "/api/v1/versions/?registered_model=person-detection"
    general = body(api_client, url, settings, False)
    assert body(api_client, url, settings, True) == general
    (key, plan), *_ = plan_registry._plans.items()
    plan.rows.sql = plan.rows.sql.replace('"models_app_modelversion"."id" AS "id"', 'no_such_column AS "id"', 1)
    assert body(api_client, url, settings, True) == general
    assert plan_registry._plans[key] is plan_registry.UNPREPARED


def backend_pid():
    return connection.connection.info.backend_pid


def start_of_request():
    """What Django does when a request starts: a kept connection is checked again."""
    connection.close_if_unusable_or_obsolete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_token_request_sends_no_separate_liveness_query(catalogue, user, monkeypatch):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    url = "/api/v1/versions/?registered_model=person-detection"
    assert client.get(url).status_code == 200
    pid = backend_pid()
    checks = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or is_usable())

    start_of_request()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200

    assert (backend_pid(), checks, len(queries)) == (pid, [], 2)  # the kept connection; the token, the rows


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ["/api/v1/versions/?registered_model=plain", "/api/v1/registered-models/plain/"])
def test_a_token_request_on_a_connection_the_database_dropped_answers_on_a_new_one(catalogue, user, url):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    expected = client.get(url)
    assert expected.status_code == 200
    pid = backend_pid()
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()

    start_of_request()
    response = client.get(url)

    assert (response.status_code, response.json()) == (200, expected.json())
    assert backend_pid() != pid


RESOLVE_URLS = [
    "/api/v1/registered-models/person-detection/resolve/?version=1",
    "/api/v1/registered-models/person-detection/resolve/?version=1&target_device=npu",
    "/api/v1/registered-models/person-detection/resolve/?version=1&precision=fp16,INT8",
    "/api/v1/registered-models/person-detection/resolve/?version=1&format=openvino&target_device=CPU",
    "/api/v1/registered-models/person-detection/resolve/?version=1&max_size=0",
    "/api/v1/registered-models/person-detection/resolve/?version=%201%20",  # trimmed, as the general path does
    "/api/v1/registered-models/person-detection/resolve/?version=3",  # archived: still resolved by its label
    "/api/v1/registered-models/person-detection/resolve/?alias=production",
    "/api/v1/registered-models/person-detection/resolve/?alias=%20Production&precision=INT8",
    # Errors: the constraint that left nothing (ranked in the prepared path), then those the
    # general path answers after the prepared query found no rows or the constraints are refused.
    "/api/v1/registered-models/person-detection/resolve/?version=1&target_device=VPU",
    "/api/v1/registered-models/person-detection/resolve/?version=1&max_size=-1",
    "/api/v1/registered-models/person-detection/resolve/?version=4",  # a version without variants
    "/api/v1/registered-models/person-detection/resolve/?version=9",
    "/api/v1/registered-models/person-detection/resolve/?alias=staging",
    "/api/v1/registered-models/person-detection/resolve/?version=1&alias=production",
    "/api/v1/registered-models/person-detection/resolve/",
    "/api/v1/registered-models/p_rson-detection/resolve/?version=1",
    "/api/v1/registered-models/nope/resolve/?version=1",
]


@pytest.fixture
def production(variants, catalogue):
    model = catalogue["person-detection"]
    services.set_alias(registered_model=model, name="production", version=model.versions.get(version="2"))


@pytest.mark.parametrize("url", RESOLVE_URLS)
def test_a_prepared_resolve_is_byte_for_byte_the_general_one(api_client, variants, production, settings, url):
    general = body(api_client, url, settings, False)
    assert general[0] in (200, 400, 404)
    assert body(api_client, url, settings, True) == general
    assert body(api_client, url, settings, True) == general
    if general[0] == 200:
        assert [type(plan) for plan in plan_registry._plans.values()] == [prepared.ResolvePlan]


def test_a_prepared_resolve_picks_the_variant_the_ranking_picks(api_client, variants, production):
    answers = [
        api_client.get(f"/api/v1/registered-models/person-detection/resolve/?{query}").json()
        for query in ("version=1", "version=1&precision=FP16,INT8", "alias=production")
    ]
    assert [a["artifact"]["id"] for a in answers] == [str(variants[i].id) for i in (1, 2, 3)]
    assert answers[2]["alias"] == "production" and answers[2]["version"] == "2"
    assert answers[0]["download_url"] == answers[0]["artifact"]["download_url"]
    assert len(plan_registry._plans) == 2  # one kind by version, one by alias


def test_a_token_resolve_costs_two_queries(variants, user):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.get("/api/v1/registered-models/person-detection/resolve/?version=2")  # prepares
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/v1/registered-models/person-detection/resolve/?version=1&target_device=NPU")
    assert response.status_code == 200 and response.json()["artifact"]["id"] == str(variants[1].id)
    assert len(ctx.captured_queries) == 2  # the token (with the lockout count), the variants


INTEL_URLS = [
    "/models?name=person-detection&version=1",
    "/models?name=PERSON&version=2",
    "/models?name=person-detection",
    "/models?precision=int8",
    "/models?name=p_rson",  # LIKE wildcards match themselves
    "/models?name=100%25",
    "/models?name=person-detection&version=1&version=3",  # the last value, as Intel read it
    "/models?name=person-detection&version=",  # an empty filter is no filter
    "/models?name=nope",  # 404 in Intel's words, from the general path
    "/models",
]


@pytest.mark.parametrize("url", INTEL_URLS)
def test_a_prepared_intel_list_is_byte_for_byte_the_general_one(api_client, variants, settings, url):
    settings.REGISTRY_PREPARED_LISTS = False
    general = api_client.get(url)
    assert general.status_code in (200, 404)
    settings.REGISTRY_PREPARED_LISTS = True
    for _ in range(2):
        response = api_client.get(url)
        assert (response.status_code, response.content, response.get("ETag")) == (
            general.status_code,
            general.content,
            general.get("ETag"),
        )
    assert {type(plan) for plan in plan_registry._plans.values()} == {plan_registry.InstancesPlan}


def test_a_prepared_intel_list_carries_each_entry_with_its_version_and_model(api_client, variants):
    entries = api_client.get("/models?name=person-detection&version=1").json()
    assert sorted(e["precision"][0] for e in entries) == ["fp16", "fp32", "int8"]
    assert {(e["name"], e["version"], e["labels"][0]) for e in entries} == {("person-detection", "1", "person")}


def test_a_token_intel_list_costs_two_queries(variants, user):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.get("/models?name=plain&version=1")  # prepares (no entries: answered by the general path)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/models?name=person-detection&version=1")
    assert response.status_code == 200 and len(response.json()) == 3
    assert len(ctx.captured_queries) == 2  # the token (with the lockout count), the entries


def plan_cache_mode():
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_intel_lists_run_on_one_generic_plan_and_leave_the_setting_as_it_was(variants, user):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    for name in ("person-detection", "PERSON", "person-det", "person-detection"):
        assert client.get(f"/models?name={name}&version=1").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ['%UPPER("models_app_registeredmodel"."name"::text) LIKE UPPER($1)%'],
        )
        assert cursor.fetchall() == [(4, 0)]  # PostgreSQL alone would plan it again for every name
    assert plan_cache_mode() == "auto"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_statement_that_fails_on_its_generic_plan_takes_the_setting_back():
    from django.db import DataError

    from models_app.lib.queries import generic_plan, planned_once_cursor

    with pytest.raises(DataError), planned_once_cursor("default") as cursor, generic_plan(cursor):
        cursor.execute("SELECT 1 / %s", [0])
        cursor.fetchall()
    assert plan_cache_mode() == "auto"
    with planned_once_cursor("default") as cursor, generic_plan(cursor):
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchall() == [("force_generic_plan",)]
    assert plan_cache_mode() == "auto"


@pytest.mark.parametrize(
    "url", ["/api/v1/registered-models/person-detection/resolve/?version=1", "/models?name=person-detection"]
)
def test_the_read_rule_still_applies_once_prepared(api_client, anon_client, variants, settings, url):
    assert api_client.get(url).status_code == 200  # prepares
    assert plan_registry._plans
    settings.REGISTRY_REQUIRE_LOGIN = True
    response = anon_client.get(url)
    assert response.status_code in (401, 403)
    assert "error" in response.json() and "artifact" not in response.json()


def test_a_created_version_finds_its_model_by_a_prepared_look_up(api_client, catalogue, settings):
    def create(model, version, enabled=True):
        settings.REGISTRY_PREPARED_LISTS = enabled
        return api_client.post("/api/v1/versions/", {"registered_model": model, "version": version}, format="json")

    for name in ("plain", "100%_sure", "Ünïcode-model"):
        created = create(name, "new")
        assert created.status_code == 201, created.content
        assert ModelVersion.objects.get(pk=created.json()["id"]).registered_model == catalogue[name]
    assert [type(plan) for plan in plan_registry._plans.values()] == [plan_registry.InstancesPlan]
    # A name matches exactly, as DRF's look-up matches it: what it does not find gets DRF's error.
    for name in ("PLAIN", "100%", "nope"):
        refused, general = create(name, "x"), create(name, "x", enabled=False)
        assert refused.status_code == general.status_code == 400
        assert refused.json() == general.json()
        assert refused.json()["error"]["fields"]["registered_model"] == [f"Object with name={name} does not exist."]
    assert not ModelVersion.objects.filter(version="x").exists()
