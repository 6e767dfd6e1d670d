"""GET /v1/metrics/ and /metrics: Prometheus' text format, for staff (a JWT) or a scraper holding
MUSICBUD_METRICS_TOKEN. Never public, from loopback neither."""
from __future__ import annotations

import asyncio

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission

from app.authentication import CachedJWTStatelessUserAuthentication, MetricsTokenAuthentication
from app.services.metrics import CONTENT_TYPE, metrics_render
from app.views.base import ApiView
from app.views.recommendations_views import IsStaff


class IsScraperOrStaff(BasePermission):
    message = "Only staff, or a scraper holding MUSICBUD_METRICS_TOKEN, can read the metrics."

    def has_permission(self, request, view) -> bool:
        return request.auth == "scrape-token" or IsStaff().has_permission(request, view)


@extend_schema(exclude=True)
class MetricsApi(ApiView):
    authentication_classes = [MetricsTokenAuthentication, CachedJWTStatelessUserAuthentication]
    permission_classes = [IsScraperOrStaff]
    initial_in_thread = True  # the staff check reads the database

    async def get(self, request):
        return HttpResponse(await asyncio.to_thread(metrics_render), content_type=CONTENT_TYPE)
