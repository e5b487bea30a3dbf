"""HTTP helpers every face shares: the one JSON error shape.

{"error": {"code": "validation_error", "message": "Invalid input.",
           "fields": {"name": ["This field is required."]}}}
"""

from django.http import JsonResponse


def error_body(code, message, fields=None):
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def json_error_view(status_code, code, message):
    def view(request, exception=None):
        return JsonResponse(error_body(code, message), status=status_code)

    return view
