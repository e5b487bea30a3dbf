"""The version page in Chromium with inspected variants: the signature table and the warning fit
a laptop and a phone screen."""

import pytest
from django.core.files.base import ContentFile

from models_app import services
from models_app.inspection.service import inspect_artifact

from .model_files import geti_export, onnx_model
from .test_e2e_browser import VIEWPORTS, fits_width, open_page, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_version_page_shows_signatures_and_warnings(browser, live_server, bucket, viewport):
    for content, name, fields in [
        (geti_export(weights="f16", height=640, width=640), "export.zip", {"precision": "FP32"}),
        (onnx_model(), "detector.onnx", {"precision": "FP32", "format": "onnx", "target_device": "GPU"}),
    ]:
        artifact = services.register_artifact(
            model_name="person-detection",
            version="1",
            fileobj=ContentFile(content, name=name),
            artifact_fields=fields,
        )
        inspect_artifact(artifact)
    page = open_page(browser, live_server, viewport)

    page.goto("/m/person-detection/v/1/")

    assert page.get_by_role("status").first.inner_text() == "Declared precision FP32, but the weights are FP16."
    tables = page.get_by_role("table", name="Inputs and outputs")
    assert tables.count() == 2
    assert "[?, 3, 640, 640]" in tables.first.inner_text()
    assert "[N, 3, 224, 224]" in tables.nth(1).inner_text()
    assert fits_width(page)
    assert page.js_errors == []
    shot(page, "version-inspection", viewport)
