"""Definitions every writer and reader shares, pinned where their copies used to disagree."""

import pytest

from models_app.models import Artifact


def test_the_variant_key_gets_defaults_for_missing_or_blank_parts_and_is_normalised():
    assert Artifact.variant_key({"precision": " int8 ", "target_device": "", "format": "ONNX"}) == {
        "precision": "INT8",
        "target_device": "CPU",
        "format": "onnx",
    }
    assert Artifact.variant_key({}) == {"precision": "FP32", "target_device": "CPU", "format": "openvino"}


@pytest.mark.django_db
def test_a_filter_value_and_a_stored_variant_are_normalised_alike(api_client, upload):
    upload(b"x", precision="fp16", target_device=" npu", format="OpenVINO")
    stored = Artifact.objects.get()
    assert (stored.precision, stored.target_device, stored.format) == ("FP16", "NPU", "openvino")
    response = api_client.get(
        "/api/v1/artifacts/", {"precision": "Fp16", "target_device": "npu ", "format": "OPENVINO"}
    )
    assert [a["id"] for a in response.json()["results"]] == [str(stored.pk)]
