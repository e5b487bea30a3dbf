"""Metadata at scale: indexed filters, trigram search on PostgreSQL, constant queries, cheap counts."""

import pytest
from django.db import connection

from models_app.models import Artifact, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pg_trgm and planner estimates exist on PostgreSQL only (CI runs it)"
)


def make_versions(n, start=0):
    for i in range(start, start + n):
        model = RegisteredModel.objects.create(name=f"model-{i}", description=f"detects thing {i}")
        version = model.versions.create(version="1", category="Detection", description=f"release {i}")
        for precision in ("FP32", "INT8"):
            Artifact.objects.create(
                version=version, precision=precision, file=f"artifacts/{i}/{precision}", size=10, sha256="0" * 64
            )


@pytest.mark.parametrize("ordering", ["-size", "size", "precision"])
def test_pages_of_tied_rows_neither_repeat_nor_skip_a_row(api_client, ordering):
    """Every artifact below has the same size, and half of them the same precision: the id
    breaks the ties, in the direction of the sort key, so paging shows each row exactly once."""
    make_versions(5)
    pages, url = [], f"/api/v1/artifacts/?ordering={ordering}&page_size=3"
    while url:
        body = api_client.get(url).json()
        pages.append([row["id"] for row in body["results"]])
        url = body["next"]
    listed = [artifact_id for page in pages for artifact_id in page]
    key = ordering.lstrip("-")
    expected = sorted(
        Artifact.objects.values_list(key, "id"), key=lambda row: (row[0], str(row[1])), reverse=ordering.startswith("-")
    )
    assert len(pages) == 4 and listed == [str(artifact_id) for _, artifact_id in expected]


@pytest.mark.parametrize(
    "url, later_pages",
    [
        # 1 count (its per-row subqueries stripped) + 1 page with the counts as correlated subqueries
        ("/api/v1/registered-models/?search=model&page_size=3", 2),
        # 1 count + the page's ids + its rows by id, joined to registered model and creator, artifact
        # stats as subqueries
        ("/api/v1/versions/?category=detection&ordering=-created_at&page_size=3", 3),
        # 1 count + the page's ids + its rows by id, joined to version, registered model and creator
        ("/api/v1/artifacts/?precision=int8&ordering=-size&page_size=3", 3),
    ],
)
def test_list_endpoints_keep_a_constant_number_of_queries(api_client, django_assert_num_queries, url, later_pages):
    """The first page reads its rows in one query (it skips none), and when it holds every
    matching row it is its own count. Past one page the count comes back, and later pages read
    their ids first; each number stays the same however many rows match."""
    make_versions(2)
    with django_assert_num_queries(1):
        response = api_client.get(url)
    assert response.status_code == 200 and response.json()["count"] == 2 and response.json()["next"] is None
    make_versions(4, start=2)
    with django_assert_num_queries(2):
        response = api_client.get(url)
    assert response.status_code == 200 and response.json()["count"] == 6 and len(response.json()["results"]) == 3
    make_versions(10, start=6)
    with django_assert_num_queries(2):
        response = api_client.get(url)
    assert response.status_code == 200 and response.json()["count"] == 16
    with django_assert_num_queries(later_pages):
        response = api_client.get(url + "&page=2")
    assert response.status_code == 200 and response.json()["count"] == 16 and len(response.json()["results"]) == 3


def test_variant_filters_ignore_case_and_spaces(api_client):
    make_versions(1)
    for query in ("precision=int8", "precision=%20Int8", "format=OPENVINO&precision=fp32&target_device=cpu"):
        assert api_client.get(f"/api/v1/artifacts/?{query}").json()["count"] == 1, query


def test_search_matches_fields_across_relations(api_client):
    make_versions(3)
    assert api_client.get("/api/v1/artifacts/?search=model-1").json()["count"] == 2  # registered model name
    assert api_client.get("/api/v1/artifacts/?search=release").json()["count"] == 6  # version description
    assert api_client.get("/api/v1/artifacts/?search=int8").json()["count"] == 3  # the artifact's own field
    assert api_client.get("/api/v1/artifacts/?search=model-1%20int8").json()["count"] == 1  # every term
    assert api_client.get("/api/v1/versions/?search=model-2").json()["count"] == 1


def test_version_and_model_stats_are_still_right(api_client):
    make_versions(1)
    body = api_client.get("/api/v1/versions/").json()["results"][0]
    assert (body["artifact_count"], body["total_size"]) == (2, 20)
    model = api_client.get("/api/v1/registered-models/model-0/").json()
    assert model["version_count"] == 1 and model["latest_version_at"] is not None
    RegisteredModel.objects.create(name="empty")
    assert api_client.get("/api/v1/registered-models/empty/").json()["version_count"] == 0


def test_counts_are_exact_below_the_limit(api_client, settings):
    settings.REGISTRY_EXACT_COUNT_LIMIT = 100
    make_versions(3)
    response = api_client.get("/api/v1/artifacts/")
    assert response.json()["count"] == 6 and "X-Count-Estimated" not in response


@postgres_only
def test_connections_price_random_reads_for_ssd():
    """Set per connection (DATABASE_RANDOM_PAGE_COST): with the server's default of 4, some
    searches read every artifact sequentially instead of the matching versions' by index."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone()[0] == "1.1"


@postgres_only
def test_counts_past_the_limit_are_the_planner_estimate(api_client, settings, django_assert_num_queries):
    settings.REGISTRY_EXACT_COUNT_LIMIT = 2
    make_versions(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    # the first page's rows + 1 capped count + 1 EXPLAIN for the estimate
    with django_assert_num_queries(3):
        response = api_client.get("/api/v1/artifacts/?page_size=2")
    assert response.status_code == 200
    assert response["X-Count-Estimated"] == "true" and response.json()["count"] >= 3
    assert len(response.json()["results"]) == 2 and response.json()["next"]
    settings.REGISTRY_EXACT_COUNT_LIMIT = 3
    exact = api_client.get("/api/v1/artifacts/?precision=int8")
    assert exact.json()["count"] == 3 and "X-Count-Estimated" not in exact


@postgres_only
def test_the_pg_trgm_migration_created_its_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone()
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"regmodel_name_trgm", "version_description_trgm", "version_labels_trgm"} <= names


@postgres_only
@pytest.mark.parametrize(
    "queryset, index",
    [
        (lambda: RegisteredModel.objects.filter(name__icontains="odel-1"), "regmodel_name_trgm"),
        (lambda: ModelVersion.objects.filter(description__icontains="lease"), "version_description_trgm"),
        # the composite index or the single-column ones, as the planner likes: never a scan of the table
        (lambda: Artifact.objects.filter(format="openvino", precision="INT8").values("pk"), "Index"),
        (lambda: Artifact.objects.filter(precision__icontains="nt8"), "artifact_precision_trgm"),
        (lambda: ModelVersion.objects.filter(category__iexact="detection"), "version_category_upper"),
    ],
)
def test_filters_can_use_their_index(queryset, index):
    """What Django generates (UPPER(col::text) LIKE/= UPPER(%s), plain equality for the normalised
    variant columns) matches the indexed expressions."""
    make_versions(3)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = queryset().order_by().explain()  # no ORDER BY: an index for sorting would do too
    assert index in plan and "Seq Scan" not in plan, plan


@postgres_only
@pytest.mark.parametrize("key", ["created_at", "updated_at", "score", "size"])
def test_a_filtered_sorted_page_of_ids_comes_from_the_index_alone(key):
    """Lists find a page's ids first (PageByIdsMixin); for a variant filter sorted by any sort key
    that query needs no table row, so deep pages skip index entries, not table rows."""
    from django.http import QueryDict

    from models_app.api.filters import ArtifactFilterSet

    make_versions(3)
    with connection.cursor() as cursor:  # leave the planner no other way, to show this one exists
        for scan in ("seqscan", "indexscan", "bitmapscan"):
            cursor.execute(f"SET LOCAL enable_{scan} = off")
    filtered = ArtifactFilterSet(QueryDict("format=openvino&precision=int8"), queryset=Artifact.objects.all()).qs
    # The list's ordering: the key, then the id as tie-breaker (api.filters.OrderingFilter).
    plan = filtered.order_by(f"-{key}", "-pk").values_list("pk", flat=True)[100:150].explain()
    assert f"Index Only Scan Backward using artifact_{key}_cover" in plan, plan
