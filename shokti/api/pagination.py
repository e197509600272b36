"""Pagination for plain APIViews (HackSoft's `get_paginated_response`)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination as DrfCursorPagination
from rest_framework.pagination import LimitOffsetPagination as DrfLimitOffsetPagination


class LimitOffsetPagination(DrfLimitOffsetPagination):
    """`?limit=&offset=` with a total `count`: for small lists (the count is a COUNT(*))."""

    default_limit = 50
    max_limit = 200


class NewestFirstCursorPagination(DrfCursorPagination):
    """`?cursor=` pages, newest first, no COUNT: as fast on page 1,000 of a million rows as on page 1."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot read with a 404; it is a malformed parameter: 400 naming it.
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None


def get_paginated_response(*, serializer_class, queryset, request, view, pagination_class=NewestFirstCursorPagination):
    paginator = pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True)
    return paginator.get_paginated_response(serializer.data)
