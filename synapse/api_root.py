"""The API's front door: /api/v1/ lists where things are; unknown paths answer in the one error shape."""
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from synapse.api import problem_json_response

# (name in the answer, URL name): the collections an integration starts from.
ENTRY_POINTS = [
    ("schema", "api-schema"),
    ("docs", "api-docs"),
    ("me", "api-me"),
    ("users", "api-user-list"),
    ("tokens", "api-token-list"),
    ("lobs", "api-lob-list"),
    ("reports", "api-report-list"),
    ("cycles", "api-cycle-list"),
    ("cycle_reports", "api-cycle-report-list"),
    ("attributes", "api-attribute-list"),
    ("samples", "api-sample-list"),
    ("requests", "api-request-list"),
    ("versions", "api-version-list"),
    ("approvals", "api-approval-list"),
]


class ApiRootView(APIView):
    """Links to the schema, the docs and each collection (no authentication needed to read it)."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: OpenApiResponse(inline_serializer(
            "ApiRoot", {name: serializers.URLField() for name, _ in ENTRY_POINTS}
        ))},
        auth=[],
    )
    def get(self, request):
        links = {}
        for name, url_name in ENTRY_POINTS:
            try:
                links[name] = request.build_absolute_uri(reverse(url_name))
            except NoReverseMatch:
                continue
        return Response(links)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return problem_json_response(
        404, "not_found",
        f"No API endpoint at {request.path}. Paths end with a slash; /api/v1/ lists the collections and "
        "/api/v1/schema/ describes every endpoint.",
    )
