"""The OpenAPI schema's shared parts: the problem-details error shape on every operation.

drf-spectacular describes requests and successful responses from the
serializers (and extend_schema where it can't tell); this hook adds the errors
every operation can answer, all in the one shape of synapse.api.
"""
from __future__ import annotations

from synapse.api import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` maps a field (dotted for nested ones) to its messages.",
    "properties": {
        "type": {"type": "string", "description": "urn:synapse:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["type", "title", "status", "detail", "code"],
}
REF = {"$ref": "#/components/schemas/Problem"}


def _response(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": REF}}}


def add_problem_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            errors = {
                "400": "The request is not valid: see `errors` for each field.",
                "401": "Not authenticated: send `Authorization: Bearer <token>`.",
                "403": "Authenticated, but your role or relation to the object doesn't allow this.",
                "4XX": "Another client error (method not allowed, unsupported media type, throttled ...).",
                "500": "A server error (logged).",
            }
            if "{" in path:
                errors["404"] = "No such object among those you can see."
            if method != "get":
                errors["409"] = "The object's state does not allow this now (or it exists already)."
                errors["413"] = "The body is larger than API_JSON_MAX_BYTES."
                errors["503"] = "The workflow service can't be reached."
            responses = operation.setdefault("responses", {})
            for code, description in errors.items():
                responses.setdefault(code, _response(description))
    return result


from drf_spectacular.extensions import OpenApiAuthenticationExtension  # noqa: E402


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "synapse.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A named API token from the API tokens page (/account/tokens/) or POST /api/v1/tokens/.",
        }
