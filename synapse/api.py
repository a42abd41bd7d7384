"""The API's one error shape, RFC 9457 problem details, served as application/problem+json:

    {"type": "urn:synapse:problem:<code>", "title": "...", "status": 400,
     "detail": "what went wrong, for the person who sent it", "code": "<code>",
     "errors": {"field": ["message", ...]}}      # errors only for field-level problems

Every 4xx/5xx of /api/ has this shape: DRF's exceptions, the services'
ApplicationError, Django's 404/403, unknown paths and unhandled errors (500).
"""
from __future__ import annotations

import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from synapse.exceptions import ApplicationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:synapse:problem:"


def problem(http_status: int, code: str, detail: str, errors=None) -> dict:
    body = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": HTTPStatus(http_status).phrase,
        "status": http_status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return body


def _problem_response(http_status: int, code: str, detail: str, errors=None, headers=None) -> Response:
    response = Response(problem(http_status, code, detail, errors), status=http_status, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def field_errors(data) -> dict:
    """DRF's error detail as {field: [messages]}; errors not tied to a field are under "non_field_errors"."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if isinstance(value, dict):
                # Nested serializer: flatten to dotted names, so every value is a list of messages.
                for sub, messages in field_errors(value).items():
                    out[f"{key}.{sub}"] = messages
            elif isinstance(value, list) and value and isinstance(value[0], (dict, list)):
                for index, item in enumerate(value):
                    for sub, messages in field_errors(item).items():
                        out[f"{key}.{index}" if sub == "non_field_errors" else f"{key}.{index}.{sub}"] = messages
            else:
                out[str(key)] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    if isinstance(data, list):
        return {"non_field_errors": [str(v) for v in data if not isinstance(v, (dict, list))]} if data else {}
    return {"non_field_errors": [str(data)]}


def summarise(errors: dict) -> str:
    first_field, messages = next(iter(errors.items()))
    summary = messages[0] if first_field == "non_field_errors" else f"{first_field}: {messages[0]}"
    more = len(errors) - 1
    return summary + (f" (and {more} more field{'s' if more > 1 else ''})" if more else "")


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return _problem_response(exc.status_code, exc.code, exc.message, exc.extra or None)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return _problem_response(413, "too_large", "The request body is too large.")

    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: a bug. Log it with its traceback and answer in the one shape.
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return _problem_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    headers = {k: v for k, v in response.headers.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
    if isinstance(exc, exceptions.ValidationError):
        errors = field_errors(exc.detail)
        return _problem_response(response.status_code, "invalid", summarise(errors) if errors else "The request is not valid.",
                                 errors, headers)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(detail, dict):
        detail = detail.get("detail", str(exc))
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    return _problem_response(response.status_code, str(code), str(detail), headers=headers)


def error_response(code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return _problem_response(http_status, code, message)


def problem_json_response(http_status: int, code: str, detail: str) -> JsonResponse:
    """The same shape outside DRF (Django's 404/500 handlers for /api/ paths)."""
    return JsonResponse(problem(http_status, code, detail), status=http_status, content_type=PROBLEM_CONTENT_TYPE)
