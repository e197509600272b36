"""Pagination for plain APIViews (HackSoft's `get_paginated_response`)."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination as DrfLimitOffsetPagination


class LimitOffsetPagination(DrfLimitOffsetPagination):
    default_limit = 50
    max_limit = 200


def get_paginated_response(*, serializer_class, queryset, request, view, pagination_class=LimitOffsetPagination):
    paginator = pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True)
    return paginator.get_paginated_response(serializer.data)
