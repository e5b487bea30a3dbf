"""Request checks every face (API, Intel routes, pages, admin) shares."""

from django.core.exceptions import BadRequest
from django.http import JsonResponse

from .lib.http import error_body


class RefuseNulMiddleware:
    """Refuse a chunked request body with a 411, and a NUL character in the path, the query string
    or a URL-encoded form with a 400.

    PostgreSQL cannot store or compare text holding NUL: a lookup with one fails in the driver,
    which the faces would otherwise report as a database outage. Forms and serializers already
    refuse NUL in the values they validate; paths, filters and searches are read from the
    request directly, so they are checked here once for all. The 400 is JSON on API paths
    (registry_project.urls.bad_request)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            # Django reads a body by its Content-Length: a chunked body would be read as empty,
            # and a 400 would blame the client's fields for it.
            message = "Send the body with a Content-Length; chunked request bodies are not supported."
            return JsonResponse(error_body("length_required", message), status=411)
        if "\x00" in request.path_info:
            raise BadRequest("The URL path contains a NUL character.")
        if has_nul(request.GET):
            raise BadRequest("The query string contains a NUL character.")
        if request.content_type == "application/x-www-form-urlencoded" and has_nul(request.POST):
            raise BadRequest("The form data contains a NUL character.")
        return self.get_response(request)


def has_nul(querydict):
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in querydict.lists())
