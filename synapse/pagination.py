"""Pagination, one kind for the API and one for server-rendered pages.

- ``PageNumberPagination``: every API list: ?page= and ?page_size= (bounded), with count/next/previous/results.
- ``paginate``: long lists on pages: Django's Paginator, the filters kept in the links.
"""
from __future__ import annotations

from django.core.paginator import Page, Paginator
from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def paginate(request, items, *, per_page: int, param: str = "page", count: int | None = None) -> Page:
    """The requested page of items (the last one if the number is past the end, the first if it isn't one).

    The page knows its query parameter and the rest of the query string, so
    ``partials/pagination.html`` links keep the filters and the other lists' pages.
    ``count``: the number of items when the caller has counted them already (with other figures, in one query).
    """
    paginator = Paginator(items, per_page)
    if count is not None:
        paginator.count = count  # Paginator.count is a cached property: this is its value, not asked again
    page = paginator.get_page(request.GET.get(param))
    others = request.GET.copy()
    others.pop(param, None)
    page.param = param
    page.query_prefix = f"{others.urlencode()}&" if others else ""
    return page


def page_of(position: int, *, per_page: int) -> int:
    """The page number (from 1) that shows the row at a 0-based position."""
    return position // per_page + 1
