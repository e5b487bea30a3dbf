from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination


class CheapCountPaginator(Paginator):
    """Counts without scanning a large result on every page.

    On PostgreSQL the count is exact up to ``REGISTRY_EXACT_COUNT_LIMIT`` rows: a capped count
    (``SELECT COUNT(*) FROM (... LIMIT limit + 1)``) reads at most that many. Past it, the
    planner's row estimate for the same query (an ``EXPLAIN``, no rows read) stands in, and
    ``estimated`` is set so the response can say so. Other databases count exactly.
    """

    estimated = False

    def page(self, number):
        """Page 1 reads one row more than a page: when that row is not there, the rows read are
        the count, and the ``COUNT`` query is not made (a model's versions, a short search)."""
        if str(number) != "1" or not isinstance(self.object_list, QuerySet):
            return super().page(number)
        rows = list(self.object_list[: self.per_page + 1])
        if len(rows) <= self.per_page:
            self.__dict__["count"] = len(rows)
        return self._get_page(rows[: self.per_page], 1, self)

    @cached_property
    def count(self):
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):  # a plain list (Geti's projects, ...)
            return super().count
        limit = settings.REGISTRY_EXACT_COUNT_LIMIT
        connection = connections[queryset.db]
        if not limit or connection.vendor != "postgresql":
            return queryset.count()
        capped = counted_rows(queryset)[: limit + 1].count()
        return capped if capped <= limit else self.count_past_limit()

    def count_past_limit(self):
        """The count of a list known to hold more than ``REGISTRY_EXACT_COUNT_LIMIT`` rows: the
        planner's estimate on PostgreSQL (at least the limit + 1; ``estimated`` is set), an exact
        count elsewhere."""
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return queryset.count()
        sql, params = counted_rows(queryset).query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        self.estimated = True
        return max(int(plan[0]["Plan"]["Plan Rows"]), settings.REGISTRY_EXACT_COUNT_LIMIT + 1)


def counted_rows(queryset):
    """What is counted of a list: its primary keys, so the per-row annotations (correlated
    subqueries) are not computed."""
    return queryset.order_by().values("pk")


class Pagination(PageNumberPagination):
    """Page-number pagination on every list; ``page_size`` may be asked for, up to 500.

    Responses keep the ``{"count", "next", "previous", "results"}`` shape. Past
    ``REGISTRY_EXACT_COUNT_LIMIT`` matching rows (PostgreSQL), ``count`` is the planner's estimate
    and the response carries ``X-Count-Estimated: true``.
    """

    page_size_query_param = "page_size"
    max_page_size = 500
    django_paginator_class = CheapCountPaginator

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        if self.page.paginator.estimated:
            response["X-Count-Estimated"] = "true"
        return response
