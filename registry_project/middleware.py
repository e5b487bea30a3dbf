"""Response compression for pages and API answers, never for model files; the content security
policy's headers."""

import csp.middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.middleware.gzip import GZipMiddleware


class GZipPagesMiddleware(GZipMiddleware):
    """Gzip for clients that accept it, except streamed responses (artifact downloads and other
    file streams): those are already compressed archives or binaries, often fetched with Range
    requests whose byte offsets must refer to the file itself, and compressing them would only
    cost CPU on the largest responses the registry sends. Nor the OCI routes (``/v2/``)."""

    # Below this, compressing saves a few hundred bytes at most: less than it costs the server
    # and the client to compress and inflate a small JSON answer (one version, an alias).
    MIN_LENGTH = 1024

    def process_response(self, request, response):
        # The OCI routes serve content-addressed bytes: Docker-Content-Digest and Content-Length
        # describe exactly what is sent, on GET and HEAD alike.
        if response.streaming or request.path.startswith("/v2/") or len(response.content) < self.MIN_LENGTH:
            return response
        return super().process_response(request, response)


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, with the policy written in settings built once.

    django-csp builds its headers again for every response, though only a view's decorator or a
    nonce can change them: that was the largest share of a small API answer's time in
    middleware. A response whose policy a view changes, or whose page asked for a nonce, is still
    built by django-csp itself; every other response gets the headers django-csp would build,
    under its rules (exempt responses, excluded prefixes, debug error pages)."""

    VIEW_POLICY = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")
    HEADERS = (
        (HEADER, "CONTENT_SECURITY_POLICY", "_csp_exempt", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", "_csp_exempt_ro", True),
    )

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, a) for a in self.VIEW_POLICY):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response
        for header, setting, exempt, report_only in self.HEADERS:
            if header not in _settings_policy:
                _settings_policy[header] = build_policy(report_only=report_only)
            prefixes = tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())
            if (
                _settings_policy[header]
                and header not in response
                and not getattr(response, exempt, False)
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = _settings_policy[header]
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


_settings_policy = {}


@receiver(setting_changed)
def forget_settings_policy(setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _settings_policy.clear()
