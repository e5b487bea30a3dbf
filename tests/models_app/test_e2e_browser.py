"""End to end in a real headless Chromium: browse, filter, compare, upload, download.

The ``browser`` fixture (tests/models_app/conftest.py) is the Chromium ``make test`` found or
installed; without one these tests fail, they do not skip. Screenshots of every page at a
laptop and a phone width land in tests/screenshots/ (ignored by git) for a human to look at.
"""

import hashlib
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.test import Client
from playwright.sync_api import expect

from models_app import services
from models_app.models import Artifact, RegisteredModel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
VIEWPORTS = {"laptop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(autouse=True)
def _live_facet_counts(settings):
    settings.REGISTRY_FACET_CACHE_SECONDS = 0


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request):
    return request.param


def open_page(browser, live_server, viewport="laptop", user=None):
    """A fresh browser context at a viewport, logged in as ``user`` through a real session."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], base_url=live_server.url, accept_downloads=True)
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Content-Security-Policy refusals show as console errors: they count as page errors.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page.js_errors = errors
    return page


def shot(page, name, viewport):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-{viewport}.png", full_page=True)


def record_progress(page):
    """Every (bar value, status state) the upload page shows, in order, as the page changes them."""
    progress = []
    page.expose_function("recordProgress", lambda value, state: progress.append((value, state)))
    page.evaluate("""() => {
        const bar = document.getElementById('upload-progress');
        const status = document.getElementById('upload-status');
        new MutationObserver(() => window.recordProgress(bar.value, status.dataset.state || ''))
            .observe(status, {attributes: true, subtree: true});
    }""")
    return progress


def fits_width(page):
    """True when nothing makes the page scroll sideways (tables scroll inside their own box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def register(model, version, precision, device, score, size, **version_fields):
    payload = (f"{model}/{version}/{precision}/{device}".encode() * (size // 16 + 1))[:size]
    return services.register_artifact(
        model_name=model,
        version=version,
        fileobj=ContentFile(payload, name=f"{model}-{precision}.bin"),
        version_fields=version_fields,
        artifact_fields={"precision": precision, "target_device": device, "score": score},
    ), payload


@pytest.fixture
def catalogue(bucket):
    """A small catalogue with files really stored in the S3 test bucket."""
    payloads = {}
    for model, version, precision, device, score, size, fields in [
        ("person-detection", "1", "FP32", "CPU", 0.81, 48_000, {"category": "Detection", "architecture": "YOLOX"}),
        ("person-detection", "1", "INT8", "CPU", 0.79, 13_000, {}),
        (
            "person-detection",
            "2",
            "FP32",
            "CPU",
            0.86,
            52_000,
            {"category": "Detection", "architecture": "YOLOX-L", "labels": ["person"], "project_name": "People"},
        ),
        ("person-detection", "2", "FP16", "GPU", 0.85, 26_000, {}),
        ("person-detection", "2", "INT8", "NPU", 0.84, 14_000, {}),
        ("vehicle-classification", "3", "FP16", "GPU", 0.7, 30_000, {"category": "Classification"}),
        ("anomaly-detection", "1", "FP32", "CPU", None, 20_000, {"category": "Anomaly"}),
    ]:
        artifact, payloads[(model, version, precision)] = register(
            model, version, precision, device, score, size, **fields
        )
    person = RegisteredModel.objects.get(name="person-detection")
    person.description = "Detects **people** in retail scenes.\n\n- trained on COCO\n- fine-tuned in Geti"
    person.tags = {"team": "vision"}
    person.save()
    person = RegisteredModel.objects.get(name="person-detection")
    services.set_alias(registered_model=person, name="production", version=person.versions.get(version="1"))
    return payloads


def test_a_data_scientist_browses_filters_and_opens_a_model(browser, live_server, catalogue, viewport):
    page = open_page(browser, live_server, viewport)
    page.goto("/")
    assert page.locator(".model-row").count() == 3
    person = page.locator(".model-row", has_text="person-detection")
    assert person.locator(".badge").all_inner_texts() == [
        "FP32 · CPU · openvino",
        "FP16 · GPU · openvino",
        "INT8 · NPU · openvino",
    ]
    assert person.locator(".alias").all_inner_texts() == ["production → 1"]
    shot(page, "catalogue", viewport)
    assert fits_width(page)

    if viewport == "phone":
        page.locator(".facets summary").click()  # the filters start folded on a phone
    page.locator('[data-facet="precision"] a', has_text="INT8").click()
    page.wait_for_url("**/?precision=INT8")
    assert page.locator(".model-row").count() == 1
    devices = page.locator('[data-facet="target_device"] a').all_inner_texts()
    assert [d.split()[0] for d in devices] == ["CPU", "NPU"]  # the devices that have an INT8 build
    page.locator('[data-facet="target_device"] a', has_text="NPU").click()
    page.wait_for_url("**/?precision=INT8&target_device=NPU")
    assert page.locator(".model-row h2").all_inner_texts() == ["person-detection"]
    page.get_by_role("searchbox").fill("no such model")
    page.get_by_role("searchbox").press("Enter")
    expect(page.get_by_text("No model matches these filters")).to_be_visible()
    page.get_by_role("link", name="Show all models").click()
    page.wait_for_url(live_server.url + "/")
    page.get_by_role("searchbox").fill("vehicle")
    page.get_by_role("searchbox").press("Enter")
    page.wait_for_url("**/?q=vehicle*")
    assert page.locator(".model-row h2").all_inner_texts() == ["vehicle-classification"]
    shot(page, "catalogue-search", viewport)

    page.goto("/")
    page.get_by_role("link", name="person-detection", exact=True).click()
    page.wait_for_url("**/m/person-detection/")
    assert page.locator(".markdown strong").inner_text() == "people"
    assert page.locator("table.matrix tbody tr").count() == 2  # FP32, INT8 of version 1, behind production
    assert page.locator("table.list tbody tr").first.locator("td").nth(1).inner_text() == "2"  # newest first
    shot(page, "model", viewport)
    assert fits_width(page)

    page.get_by_role("link", name="2", exact=True).first.click()
    page.wait_for_url("**/m/person-detection/v/2/")
    assert page.locator("tr.variant").count() == 3
    assert "People" in page.locator(".facts").inner_text()
    page.locator("tr.variant").first.get_by_role("button", name="More").click()
    assert "curl -fL -o" in page.locator("code.cmd").first.inner_text()
    shot(page, "version", viewport)
    assert fits_width(page)
    assert page.js_errors == []


def test_comparing_two_versions_highlights_differences_and_plots_score_against_size(
    browser, live_server, catalogue, viewport
):
    page = open_page(browser, live_server, viewport)
    page.goto("/m/person-detection/")
    button = page.locator(".compare-button")
    assert button.is_disabled()
    for checkbox in page.locator("input.pick").all():
        checkbox.check()
    expect(button).to_have_text("Compare 2 selected")
    button.click()
    page.wait_for_url("**/compare/?versions=*")
    header = page.locator("table.compare").first.locator("thead th").all_inner_texts()
    assert header[1:] == ["person-detection:2", "person-detection:1"]
    differing = page.locator("table.compare").first.locator("tr.differs th").all_inner_texts()
    assert "Architecture" in differing and "Model" not in differing and "Version" not in differing
    assert page.locator("svg.chart .marker").count() == 5
    assert page.locator(".legend-item").all_inner_texts()[:3] == ["FP32", "FP16", "INT8"]
    shot(page, "compare", viewport)
    assert fits_width(page)
    assert page.js_errors == []


def test_uploading_a_file_shows_progress_then_the_new_version(browser, live_server, user, bucket, tmp_path):
    page = open_page(browser, live_server)
    page.goto("/upload/")
    page.wait_for_url("**/accounts/login/?next=/upload/")
    shot(page, "login", "laptop")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw-alice")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/upload/")

    # The server's validation errors appear next to their fields.
    model_file = tmp_path / "detector.bin"
    payload = os.urandom(8 * 1024 * 1024)
    model_file.write_bytes(payload)
    page.get_by_label("Model file").set_input_files(str(model_file))
    page.get_by_label("Version").fill("1.0")
    page.get_by_label("Format").fill("Open VINO!")
    page.get_by_role("button", name="Upload").click()
    field_error = page.locator('[data-error-for="registered_model"]')
    field_error.wait_for()
    assert "required" in field_error.inner_text()
    assert page.locator("#upload-error").inner_text() == "Invalid input. Check the highlighted fields."
    page.get_by_label("Model name").fill("uploaded-detector")
    page.get_by_role("button", name="Upload").click()
    format_error = page.locator('[data-error-for="format"]')
    format_error.wait_for()
    assert "lower-case" in format_error.inner_text()
    assert not field_error.is_visible()  # the fixed field's message is gone
    assert not page.locator("#upload-status").is_visible()  # no stale progress after a refusal
    shot(page, "upload-errors", "laptop")
    assert not Artifact.objects.exists() and list(bucket.objects.all()) == []

    # A valid upload: the bar fills up, then the version page opens.
    progress = record_progress(page)
    page.get_by_label("Format").fill("openvino")
    page.get_by_label("Precision").select_option("INT8")
    page.get_by_label("Target device").fill("npu")
    page.get_by_label("Score").fill("0.93")
    page.get_by_label("Labels").fill("person, car")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/m/uploaded-detector/v/1.0/#variant-*")
    assert any(state == "sending" for _, state in progress)
    assert max(value for value, _ in progress) == 100
    assert any(state in ("stored", "done") for _, state in progress)

    artifact = Artifact.objects.with_version().get()
    assert (artifact.precision, artifact.target_device, artifact.score) == ("INT8", "NPU", 0.93)
    assert artifact.version.labels == ["person", "car"]
    assert artifact.sha256 == hashlib.sha256(payload).hexdigest()
    assert [obj.key for obj in bucket.objects.all()] == [artifact.file.name]
    assert page.locator("tr.variant .badge").inner_text() == "INT8"
    shot(page, "version-after-upload", "laptop")
    assert page.js_errors == []


def test_upload_page_fits_a_phone(browser, live_server, user):
    page = open_page(browser, live_server, "phone", user=user)
    page.goto("/upload/?model=person-detection")
    assert page.get_by_label("Model name").input_value() == "person-detection"
    shot(page, "upload", "phone")
    assert fits_width(page)


def test_the_geti_page_is_linked_and_fits(browser, live_server, viewport):
    page = open_page(browser, live_server, viewport)
    page.goto("/")
    page.get_by_role("link", name="Geti import").click()
    page.wait_for_url("**/geti/")
    expect(page.locator("h1")).to_have_text("Intel Geti")
    shot(page, "geti", viewport)
    assert fits_width(page)


def test_downloading_a_variant_gives_its_exact_bytes(browser, live_server, catalogue):
    page = open_page(browser, live_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/m/person-detection/v/2/")
    variant = page.locator("tr.variant", has_text="FP16")
    variant.get_by_role("button", name="More").click()
    more = page.locator("tr.variant-more:not([hidden])")
    more.locator("button.copy").first.click()
    expect(more.locator("button.copy").first).to_have_text("Copied")
    sha = more.locator("code[id^=sha-]").inner_text()
    assert page.evaluate("navigator.clipboard.readText()") == sha

    with page.expect_download() as info:
        variant.get_by_role("link", name="Download").click()
    download = info.value
    content = Path(download.path()).read_bytes()
    assert content == catalogue[("person-detection", "2", "FP16")]
    assert hashlib.sha256(content).hexdigest() == sha
    assert download.suggested_filename == "person-detection-FP16.bin"


def test_a_curator_sees_how_much_a_bulk_delete_removes(browser, live_server, catalogue, admin_user, bucket):
    page = open_page(browser, live_server, user=admin_user)
    page.goto("/admin/models_app/modelversion/")
    assert page.locator("#result_list tbody tr").count() == 4
    shot(page, "admin-versions", "laptop")
    page.locator("#result_list tbody tr", has_text="person-detection").locator("input.action-select").first.check()
    page.locator("select[name=action]").select_option("delete_selected")
    page.locator("button[name=index]").first.click()
    totals = page.locator("#file-totals")
    assert "3 stored files" in totals.inner_text() and "92000 bytes" in totals.inner_text()
    shot(page, "admin-delete-confirmation", "laptop")
    page.get_by_role("button", name="Yes, I’m sure").click()
    page.wait_for_url("**/admin/models_app/modelversion/")
    assert page.locator("#result_list tbody tr").count() == 3
    assert len(list(bucket.objects.all())) == 4  # 7 files, the 3 of version 2 gone


# The flows of pages that answer at a glance


def test_a_data_scientist_finds_the_variant_for_an_npu_through_the_matrix(browser, live_server, catalogue, viewport):
    page = open_page(browser, live_server, viewport)
    page.goto("/m/person-detection/")
    assert "Variants of 1" in page.locator("#variants h2").inner_text()  # the version behind production
    page.get_by_label("Show the variants of").select_option("2")
    page.wait_for_url("**/m/person-detection/?matrix=2*")
    shot(page, "model-matrix", viewport)
    assert fits_width(page)
    page.locator("table.matrix a.cell", has_text="0.84").click()
    page.wait_for_url("**/m/person-detection/v/2/#variant-*")
    npu = Artifact.objects.get(version__version="2", target_device="NPU")
    assert page.url.endswith(f"#variant-{npu.pk}")
    expect(page.locator(f"#variant-{npu.pk}")).to_contain_text("NPU")
    assert page.js_errors == []


def test_resolving_beside_an_alias_shows_the_file_before_the_download(browser, live_server, catalogue, viewport):
    page = open_page(browser, live_server, viewport)
    page.goto("/m/person-detection/")
    row = page.locator("#aliases tr[data-alias=production]")
    row.get_by_label("Device for production").select_option("CPU")
    row.get_by_label("Precision for production").select_option("INT8")
    row.get_by_role("button", name="Resolve").click()
    resolved = row.locator("output.resolved")
    expect(resolved).to_contain_text("INT8 · CPU · openvino of 1")
    artifact = Artifact.objects.get(version__version="1", precision="INT8")
    assert artifact.sha256[:12] in resolved.inner_text() and "12.7\xa0KB" in resolved.inner_text()
    shot(page, "model-resolve", viewport)
    with page.expect_download() as info:
        resolved.get_by_role("link", name="Download").click()
    assert Path(info.value.path()).read_bytes() == catalogue[("person-detection", "1", "INT8")]
    assert page.js_errors == []


def test_a_destructive_alias_action_is_confirmed_with_a_reason_and_the_typed_name(
    browser, live_server, catalogue, admin_user
):
    person = RegisteredModel.objects.get(name="person-detection")
    services.set_alias(registered_model=person, name="production", version=person.versions.get(version="2"))
    page = open_page(browser, live_server, user=admin_user)
    page.goto("/m/person-detection/")
    row = page.locator("#aliases tr[data-alias=production]")
    row.locator("summary", has_text="Roll back").click()
    form = row.locator("details.confirm[open] form")
    expect(form).to_contain_text("2 → 1")
    form.get_by_label("Reason").fill("regression on NPU driver")
    form.get_by_label("Type production to confirm").fill("prod")
    form.get_by_role("button", name="Roll back production").click()
    assert person.aliases.get(name="production").version.version == "2"  # the browser refused the wrong name
    shot(page, "alias-confirm", "laptop")
    form.get_by_label("Type production to confirm").fill("production")
    form.get_by_role("button", name="Roll back production").click()
    page.wait_for_url("**/m/person-detection/#aliases")
    assert person.aliases.get(name="production").version.version == "1"
    expect(page.locator("#aliases .events li").first).to_contain_text(
        "admin rolled production back from 2 to 1: regression on NPU driver"
    )
    assert page.js_errors == []


def test_comparing_with_the_previous_version_from_the_version_page(browser, live_server, catalogue, viewport):
    page = open_page(browser, live_server, viewport)
    page.goto("/m/person-detection/v/2/")
    page.get_by_role("link", name="Compare with 1").click()
    page.wait_for_url("**/compare/?versions=*")
    total = page.locator("table.compare tr", has_text="Total size")
    expect(total.locator(".delta")).to_have_count(1)
    shot(page, "compare-previous", viewport)
    assert fits_width(page)
    assert page.js_errors == []


def test_the_dense_table_view_is_kept_in_the_url(browser, live_server, catalogue, viewport):
    page = open_page(browser, live_server, viewport)
    page.goto("/")
    page.get_by_role("link", name="Table", exact=True).click()
    page.wait_for_url("**/?view=table")
    assert page.locator("table.dense tbody tr").count() == 3
    page.get_by_label("Sort").select_option("versions")  # applies at once, from static JS
    page.wait_for_url("**/?*sort=versions*")
    assert "view=table" in page.url
    assert page.locator("table.dense tbody tr").first.locator("td").nth(1).inner_text() == "person-detection"
    shot(page, "catalogue-table", viewport)
    assert fits_width(page)
    assert page.js_errors == []


def test_the_api_docs_work_offline_under_the_policy(browser, live_server):
    page = open_page(browser, live_server)
    page.route(
        "**/*", lambda route: route.abort() if not route.request.url.startswith(live_server.url) else route.continue_()
    )
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Model Registry API")
    page.get_by_role("link", name="← Model Registry").click()
    page.wait_for_url(live_server.url + "/")
    assert page.js_errors == []


def test_the_404_page_has_the_site_layout(browser, live_server, viewport):
    page = open_page(browser, live_server, viewport)
    response = page.goto("/m/no-such-model/")
    assert response.status == 404
    expect(page.locator("header.site .brand")).to_be_visible()
    page.get_by_label("Search models").fill("person")
    page.get_by_label("Search models").press("Enter")
    page.wait_for_url("**/?q=person")
    shot(page, "not-found", viewport)
    assert page.js_errors == []


def test_every_page_works_under_the_content_security_policy(browser, live_server, catalogue, admin_user):
    """No page needs inline code: visiting each one (logged in as a curator, so the write forms
    and the admin are there too) logs no policy refusal. ReDoc may only be refused its remote
    logo, which the policy keeps out like any other remote resource."""
    version = RegisteredModel.objects.get(name="person-detection").versions.get(version="2")
    older = RegisteredModel.objects.get(name="person-detection").versions.get(version="1")
    pages = [
        "/",
        "/?view=table&precision=INT8",
        "/m/person-detection/",
        "/m/person-detection/v/2/",
        f"/compare/?versions={version.pk},{older.pk}",
        "/upload/",
        "/geti/",
        "/m/no-such-model/",
        "/admin/",
        "/admin/models_app/modelversion/",
        f"/admin/models_app/modelversion/{version.pk}/change/",
        "/admin/models_app/artifact/",
        "/api/docs/",
    ]
    page = open_page(browser, live_server, user=admin_user)
    for url in pages:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.js_errors == [], url
    page.goto("/api/redoc/")
    # ReDoc parses and lays out the whole schema in the page before it shows the title: work for
    # the browser's CPU that took longer than the default 5 s wait on a loaded two-core machine.
    title = page.locator("redoc h1, #redoc-container h1, [role=main] h1").first
    expect(title).to_contain_text("Model Registry API", timeout=30_000)
    assert [e for e in page.js_errors if "img-src" not in e] == []
