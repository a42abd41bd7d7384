"""The API's JSON parser: limits checked before a body is parsed.

DRF reads the request stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
never applies to JSON bodies. This parser refuses, before json.loads:

- a body larger than API_JSON_MAX_BYTES (413, from Content-Length when given,
  else after reading one byte more than the limit);
- nesting deeper than API_JSON_MAX_DEPTH (400; json.loads would raise
  RecursionError near 1,000 levels, a 500);
and after parsing:
- a top-level value that is not an object (every body this API takes is one);
- a NUL character anywhere (PostgreSQL can store it neither in text nor jsonb).
"""
from __future__ import annotations

import codecs
import json
import re

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

# Strings first (they may hold brackets), then the brackets themselves.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request body is too large."


def json_depth(raw: bytes) -> int:
    depth = deepest = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if len(token) != 1:
            continue
        if token[0] in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_JSON_MAX_BYTES
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise RequestTooLarge(f"A JSON body may be at most {limit} bytes; this one is {declared}.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"A JSON body may be at most {limit} bytes.")
        max_depth = settings.API_JSON_MAX_DEPTH
        if json_depth(raw) > max_depth:
            raise ParseError(f"The JSON body is nested more than {max_depth} levels deep.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ParseError("The body must be a JSON object ({...}).")
        if "\x00" in text or _has_nul(data):
            raise ParseError("The body contains a NUL character (\\u0000), which can't be stored.")
        return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
