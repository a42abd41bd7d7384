"""The one pagination of every API list: ?page= and ?page_size= (bounded), with count/next/previous/results."""
from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
