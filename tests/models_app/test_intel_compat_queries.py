"""Query counts of the Intel-compatible reads, pinned in-process (the live-server tests cover behaviour)."""

import json

import pytest

from models_app.models import Artifact

pytestmark = pytest.mark.django_db


@pytest.fixture
def many_entries(model_version):
    """1,200 entries (more than two chunks of the streamed list) across one version."""
    return Artifact.objects.bulk_create(
        [
            Artifact(
                version=model_version, target_device=f"DEV{n}", file=f"artifacts/x/{n}.zip", size=n, sha256="0" * 64
            )
            for n in range(1200)
        ]
    )


@pytest.mark.parametrize("query", ["", "?name=person&version=1&precision=fp32&category=detect"])
def test_a_long_list_costs_two_queries_however_many_entries_it_returns(
    anon_client, many_entries, django_assert_num_queries, query
):
    # 1. the first chunk and one more, to see that there is more
    # 2. the artifacts with their versions and registered models, streamed through one cursor
    with django_assert_num_queries(2):
        response = anon_client.get(f"/models{query}")
        entries = json.loads(b"".join(response.streaming_content))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert len(entries) == 1200 and len({e["id"] for e in entries}) == 1200


def test_a_short_list_costs_one_query_and_is_the_same_json(anon_client, many_entries, django_assert_num_queries):
    Artifact.objects.exclude(pk__in=[a.pk for a in many_entries[:3]]).delete()
    with django_assert_num_queries(1):
        response = anon_client.get("/models?name=person")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert not response.streaming
    assert sorted(e["target_device"] for e in json.loads(response.content)) == ["DEV0", "DEV1", "DEV2"]


def test_one_entry_costs_one_query(anon_client, many_entries, django_assert_num_queries):
    # 1. the artifact with its version and registered model, by external id or UUID
    with django_assert_num_queries(1):
        response = anon_client.get(f"/models/{many_entries[0].pk}")
    assert response.status_code == 200
    assert response.json()["target_device"] == "DEV0"
