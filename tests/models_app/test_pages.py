"""The server-rendered pages: what they show, who sees write actions, and query counts."""

import uuid

import pytest

from models_app.models import Artifact, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _live_facet_counts(settings):
    """Counts computed on every request, so each test sees its own data."""
    settings.REGISTRY_FACET_CACHE_SECONDS = 0


def make_artifact(version, precision="FP32", device="CPU", fmt="openvino", score=None, size=1000):
    """An artifact row without a stored object: pages only read the row."""
    return Artifact.objects.create(
        version=version,
        precision=precision,
        target_device=device,
        format=fmt,
        score=score,
        size=size,
        sha256=uuid.uuid4().hex * 2,
        file=f"artifacts/{uuid.uuid4()}/model.bin",
        original_filename="model.bin",
    )


def make_models(count, prefix="model"):
    for i in range(count):
        registered = RegisteredModel.objects.create(
            name=f"{prefix}-{i:04d}", description=f"Model number {i}", tags={"team": "vision" if i % 2 else "audio"}
        )
        old = registered.versions.create(version="1", category="Detection", origin="upload")
        new = registered.versions.create(
            version="2", category="Detection" if i % 3 else "Segmentation", origin="geti" if i % 4 == 0 else "upload"
        )
        make_artifact(old, "FP32", "CPU")
        make_artifact(new, "FP16", "GPU", score=0.8)
        make_artifact(new, "INT8", "NPU" if i % 2 else "CPU", score=0.75)


def content(response):
    return response.content.decode()


# Catalogue


def test_the_catalogue_lists_models_with_their_newest_version_and_variant_badges(client):
    make_models(3)
    response = client.get("/")
    assert response.status_code == 200
    html = content(response)
    assert 'href="/m/model-0000/"' in html
    assert 'href="/m/model-0001/v/2/"' in html  # the newest version, not version 1
    assert "INT8 · NPU" in html and "FP16 · GPU" in html
    assert "FP32 · CPU" not in html  # a badge of an older version only
    assert "team: vision" in html


def test_the_catalogue_shows_a_models_aliases(client):
    from models_app import services

    make_models(1)
    registered = RegisteredModel.objects.get()
    services.set_alias(registered_model=registered, name="production", version=registered.versions.get(version="1"))
    html = content(client.get("/"))
    assert '<a class="alias" href="/m/model-0000/v/1/"' in html and "production → 1" in html


@pytest.mark.parametrize("count", [20, 200])
def test_the_catalogue_query_count_does_not_grow_with_the_data(client, django_assert_num_queries, count):
    make_models(count)
    # 1 page count, 1 page of models with stats, 1 newest version per model (sliced prefetch),
    # 1 their artifacts, 1 the models' aliases, 1 the page's matching variants (a variant facet
    # is chosen), 6 facet counts (category, precision, target device, format, origin, tag).
    with django_assert_num_queries(12):
        response = client.get("/", {"q": "model", "precision": "int8", "sort": "updated"})
    assert response.status_code == 200
    assert content(response).count('class="model-row"') == min(count, 25)


def test_the_catalogue_caches_facet_counts_when_asked_to(client, settings, django_assert_num_queries):
    from django.core.cache import cache

    settings.REGISTRY_FACET_CACHE_SECONDS = 60
    cache.clear()
    make_models(3)
    first = client.get("/", {"precision": "FP16"}).context["facets"]
    make_models(2, prefix="later")
    # count, page, newest versions, their artifacts, aliases, matching variants: the six facet
    # queries come from the cache
    with django_assert_num_queries(6):
        response = client.get("/", {"precision": "FP16"})
    assert response.context["facets"] == first
    assert response.context["page"].paginator.count == 5  # the list itself is live
    cache.clear()


def test_the_catalogue_filters_by_a_variant_that_has_both_chosen_values(client):
    make_models(4)  # odd models have INT8 for NPU, even ones INT8 for CPU
    html = content(client.get("/", {"precision": "INT8", "target_device": "npu"}))
    assert "model-0001" in html and "model-0003" in html
    assert "model-0000" not in html and "model-0002" not in html


def test_the_catalogue_counts_each_facet_value_with_the_other_filters_applied(client):
    make_models(4)
    response = client.get("/", {"target_device": "NPU"})
    facets = {name: {value: n for value, n, _ in values} for name, _, values in response.context["facets"]}
    assert facets["target_device"] == {"CPU": 4, "GPU": 4, "NPU": 2}  # its own filter is not applied
    assert facets["precision"] == {"INT8": 2}
    assert facets["origin"] == {"upload": 2}


def test_the_catalogue_searches_names_descriptions_and_architectures(client):
    RegisteredModel.objects.create(name="face-detector", description="Finds faces")
    other = RegisteredModel.objects.create(name="segmenter")
    other.versions.create(version="1", architecture="UNet")
    assert "face-detector" in content(client.get("/", {"q": "faces"}))
    html = content(client.get("/", {"q": "unet"}))
    assert "segmenter" in html and "face-detector" not in html


def test_the_catalogue_filters_by_tag_on_the_model_or_its_versions(client):
    RegisteredModel.objects.create(name="tagged-model", tags={"team": "vision"})
    with_version_tag = RegisteredModel.objects.create(name="tagged-version")
    with_version_tag.versions.create(version="1", tags={"team": "vision"})
    RegisteredModel.objects.create(name="other-team", tags={"team": "audio"})
    html = content(client.get("/", {"tag": "team:vision"}))
    assert "tagged-model" in html and "tagged-version" in html and "other-team" not in html


@pytest.mark.parametrize("tag", ["a__contains:x", "__:", "x y:1", ":", "key"])
def test_the_catalogue_takes_any_tag_text_as_a_plain_key(client, tag):
    RegisteredModel.objects.create(name="m", tags={"a__contains": "x"})
    response = client.get("/", {"tag": tag})
    assert response.status_code == 200
    assert ("m" in [m.name for m in response.context["page"].object_list]) == (tag == "a__contains:x")


def test_the_catalogue_sorts_and_paginates(client):
    make_models(30)
    first = client.get("/", {"sort": "name"})
    assert first.context["page"].paginator.num_pages == 2
    names = [m.name for m in first.context["page"].object_list]
    assert names == sorted(names) and names[0] == "model-0000"
    second = content(client.get("/", {"sort": "name", "page": 2}))
    assert "model-0029" in second and "Page 2 of 2" in second


def test_the_catalogue_says_when_nothing_matches(client):
    make_models(1)
    assert "No model matches these filters" in content(client.get("/", {"q": "nothing-like-this"}))


# Registered model page


def test_the_model_page_renders_markdown_safely(client):
    RegisteredModel.objects.create(
        name="md", description="# Title\n\n**bold** <script>alert(1)</script> [x](javascript:alert(1))"
    )
    html = content(client.get("/m/md/"))
    # The description's headings rank below the page's own h1 and h2s.
    assert "<h3>Title</h3>" in html and html.count("<h1>") == 1 and "<strong>bold</strong>" in html
    assert "<script>alert(1)</script>" not in html and "javascript:" not in html


def test_the_model_page_lists_versions_newest_first_and_a_variant_matrix(client):
    make_models(1)
    response = client.get("/m/model-0000/")
    assert response.status_code == 200
    html = content(response)
    assert html.index('href="/m/model-0000/v/2/"') < html.index('href="/m/model-0000/v/1/"')
    devices, rows = response.context["matrix"]
    assert devices == ["CPU", "GPU"]
    assert [precision for precision, _ in rows] == ["FP16", "INT8"]  # widest precision first
    assert "0.75" in html and "1000\xa0bytes" in html


def test_the_model_page_query_count_does_not_grow_with_versions(client, django_assert_num_queries):
    registered = RegisteredModel.objects.create(name="many")
    for i in range(60):
        make_artifact(registered.versions.create(version=str(i)), score=i / 100)
    # model, versions count, the versions page with totals, aliases (none, so no query for their
    # versions' devices), every version label (the matrix switch), the matrix's version (newest:
    # no alias), its artifacts, alias moves, activity
    with django_assert_num_queries(9):
        response = client.get("/m/many/")
    assert response.status_code == 200


def test_an_unknown_model_is_a_404_page(client):
    assert client.get("/m/nope/").status_code == 404


# Version page


def test_the_version_page_shows_metadata_variants_checksums_and_a_curl_command(client):
    registered = RegisteredModel.objects.create(name="det")
    version = registered.versions.create(
        version="3",
        category="Detection",
        architecture="YOLOX",
        labels=["person", {"name": "car"}],
        project_name="Geti people",
        project_id="p-123",
        overview={"map": 0.5},
        provenance={"dataset": "coco"},
    )
    artifact = make_artifact(version, "INT8", "NPU", score=0.9)
    html = content(client.get("/m/det/v/3/"))
    for text in (
        "YOLOX",
        "Detection",
        "person",
        "car",
        "Geti people",
        "p-123",
        "<dt>dataset</dt><dd>coco</dd>",
        artifact.sha256,
        f"/api/v1/artifacts/{artifact.pk}/download/",
    ):
        assert text in html
    assert f"curl -fL -o model.bin http://testserver/api/v1/artifacts/{artifact.pk}/download/" in html
    assert 'data-copy="#sha-' in html


def test_the_version_page_query_count_is_fixed(client, django_assert_num_queries):
    registered = RegisteredModel.objects.create(name="det")
    version = registered.versions.create(version="1")
    for device in ("CPU", "GPU", "NPU", "AUTO"):
        make_artifact(version, "INT8", device)
    # version with model, creator and parent; its artifacts; its aliases; the previous version
    # (compare with it); derived versions; activity
    with django_assert_num_queries(6):
        assert client.get("/m/det/v/1/").status_code == 200


def test_the_curl_command_carries_a_token_when_reads_need_a_login(client, user, settings):
    settings.REGISTRY_REQUIRE_LOGIN = True
    version = RegisteredModel.objects.create(name="det").versions.create(version="1")
    make_artifact(version)
    assert client.get("/m/det/v/1/").status_code == 302
    client.force_login(user)
    assert "Authorization: Token $REGISTRY_TOKEN" in content(client.get("/m/det/v/1/"))


# Compare


def test_compare_shows_two_versions_side_by_side_with_differences_and_a_chart(client):
    make_models(2)
    first, second = ModelVersion.objects.filter(version="2").order_by("registered_model__name")
    response = client.get("/compare/", {"versions": f"{first.pk},{second.pk}"})
    assert response.status_code == 200
    comparison = response.context["comparison"]
    rows = {row.field: row for row in comparison.rows}
    assert rows["Model"].differs and rows["Model"].values == ["model-0000", "model-0001"]
    assert not rows["Version"].differs
    assert rows["Variants"].values == ["2", '2 <span class="delta same">±0</span>']  # the change against the first
    assert [row.field for row in comparison.variants] == ["FP16/GPU/openvino", "INT8/CPU/openvino", "INT8/NPU/openvino"]
    same = '<span class="delta same">±0</span>'
    assert comparison.variants[0].values == ["0.8 · 1000\xa0bytes", f"0.8 {same} · 1000\xa0bytes {same}"]
    assert comparison.variants[1].values[1] == "—"  # model-0001 has INT8 for NPU, not CPU
    html = content(response)
    assert '<tr class="differs"><th scope="row">Model</th>' in html
    assert "<svg" in html and html.count('class="marker"') == 4


def test_compare_accepts_variants_from_repeated_checkbox_parameters(client):
    version = RegisteredModel.objects.create(name="det").versions.create(version="1")
    a = make_artifact(version, "FP32", "CPU", score=0.9, size=4000)
    b = make_artifact(version, "INT8", "CPU", size=1000)
    response = client.get(f"/compare/?artifacts={a.pk}&artifacts={b.pk}")
    assert response.status_code == 200
    rows = {row.field: row for row in response.context["comparison"].rows}
    assert rows["Precision"].values == ["FP32", "INT8"] and rows["Precision"].differs
    assert not rows["Target device"].differs
    assert "Not plotted (no score)" in content(response)


@pytest.mark.parametrize(
    "ids, message",
    [
        (lambda a: str(a), "Choose 2 to 4 items"),
        (lambda a: ",".join([str(a)] + [str(uuid.uuid4()) for _ in range(4)]), "Choose 2 to 4 items"),
        (lambda a: f"{a},not-an-id", "is not a valid id"),
        (lambda a: f"{a},{uuid.uuid4()}", "No version with id"),
    ],
)
def test_compare_refuses_a_selection_it_cannot_compare(client, ids, message):
    version = RegisteredModel.objects.create(name="det").versions.create(version="1")
    response = client.get("/compare/", {"versions": ids(version.pk)})
    assert response.status_code == 400
    assert message in content(response)


def test_compare_without_a_selection_explains_how_to_choose(client):
    response = client.get("/compare/")
    assert response.status_code == 200 and "Tick 2 to 4" in content(response)


# Upload, login and write actions


def test_the_upload_page_needs_a_login(client):
    response = client.get("/upload/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=/upload/")


def test_the_upload_page_needs_the_add_permission(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("bob", password="pw"))
    assert client.get("/upload/").status_code == 403


def test_the_upload_page_posts_to_the_artifacts_api_with_a_csrf_token(client, user):
    client.force_login(user)
    response = client.get("/upload/", {"model": "det"})
    html = content(response)
    assert response.status_code == 200
    assert 'action="/api/v1/artifacts/"' in html and "csrfmiddlewaretoken" in html
    assert 'value="det"' in html and "js/upload.js" in html


def test_write_actions_appear_only_for_users_allowed_to_write(client, user, django_user_model):
    make_models(1)
    assert "Upload" not in content(client.get("/"))
    reader = django_user_model.objects.create_user("reader", password="pw")
    client.force_login(reader)
    assert "Upload a model" not in content(client.get("/"))
    client.force_login(user)
    assert "Upload a model" in content(client.get("/"))
    assert "Upload a version" in content(client.get("/m/model-0000/"))


def test_the_admin_link_shows_for_staff_only(client, user):
    assert 'href="/admin/"' not in content(client.get("/"))
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert 'href="/admin/"' in content(client.get("/"))


def test_login_and_logout_round_trip(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice", "next": "/upload/"})
    assert response.status_code == 302 and response["Location"] == "/upload/"
    assert "alice" in content(client.get("/"))
    assert client.get("/accounts/logout/").status_code == 405  # logging out takes a POST
    assert client.post("/accounts/logout/").status_code == 302
    assert "Log in" in content(client.get("/"))


def test_a_wrong_password_shows_an_error(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and "Please enter a correct username and password" in content(response)


def test_pages_need_a_login_when_reads_do(client, settings):
    settings.REGISTRY_REQUIRE_LOGIN = True
    for path in ("/", "/compare/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_login_page_is_protected_by_csrf(user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/accounts/login/", {"username": "alice", "password": "pw-alice"}).status_code == 403
