"""Response compression for pages and API answers, never for model files."""

from django.middleware.gzip import GZipMiddleware


class GZipPagesMiddleware(GZipMiddleware):
    """Gzip for clients that accept it, except streamed responses (artifact downloads and other
    file streams): those are already compressed archives or binaries, often fetched with Range
    requests whose byte offsets must refer to the file itself, and compressing them would only
    cost CPU on the largest responses the registry sends."""

    def process_response(self, request, response):
        if response.streaming:
            return response
        return super().process_response(request, response)
