"""The OpenAPI schema's error responses (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]).

Every operation can fail in the one error shape (models_app.api.errors); the views document their
successes, and this hook adds the failures each kind of operation really answers, so clients
and schema fuzzers know them: any request can be refused (400), unauthenticated (401), forbidden
(403), aimed at something missing (404), throttled (429) or caught in an outage (503); a write
can also conflict (409), come chunked without a length (411), be too large (413) or reuse an
Idempotency-Key (422)."""

READ_ERRORS = {
    "400": "Invalid input: a bad filter, page or parameter.",
    "401": "Authentication failed.",
    "403": "No permission.",
    "404": "Not found.",
    "429": "Too many failed authentications from this client.",
    "503": "The database or object storage is unavailable (with Retry-After).",
}
WRITE_ERRORS = {
    **READ_ERRORS,
    "409": "Conflicts with existing data, or an Idempotency-Key still in use.",
    "411": "A chunked request body without a Content-Length.",
    "413": "The file is larger than the registry accepts.",
    "422": "The Idempotency-Key was used for a different request.",
}
EXTRA_ERRORS = {
    "download/": {"416": "The Range lies outside the file."},
    "/uploads/": {"501": "Direct uploads need S3 storage."},
    "/uploads/{id}/parts/": {"409": "The upload is no longer pending, or storage no longer has it."},
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {}},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            errors = dict(READ_ERRORS if method in ("get", "head", "options") else WRITE_ERRORS)
            for fragment, extra in EXTRA_ERRORS.items():
                if fragment in path:
                    errors.update(extra)
            responses = operation.setdefault("responses", {})
            if method == "get" and path.endswith("download/"):
                responses.setdefault("302", {"description": "Redirect to a short-lived presigned URL (mode=redirect)."})
            for code, description in errors.items():
                responses.setdefault(code, {"description": description, "content": reference})
    return result
