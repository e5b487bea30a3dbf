"""Response compression for pages and API answers, never for model files."""

from django.middleware.gzip import GZipMiddleware


class GZipPagesMiddleware(GZipMiddleware):
    """Gzip for clients that accept it, except streamed responses (artifact downloads and other
    file streams): those are already compressed archives or binaries, often fetched with Range
    requests whose byte offsets must refer to the file itself, and compressing them would only
    cost CPU on the largest responses the registry sends. Nor the OCI routes (``/v2/``)."""

    def process_response(self, request, response):
        # The OCI routes serve content-addressed bytes: Docker-Content-Digest and Content-Length
        # describe exactly what is sent, on GET and HEAD alike.
        if response.streaming or request.path.startswith("/v2/"):
            return response
        return super().process_response(request, response)
