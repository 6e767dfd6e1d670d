"""Request metrics: every request counted by its route's name (never its raw path: ids would make a series each),
method and status, and timed (app/services/metrics.py). Async only, so Django calls it on the event loop with no
thread hop; its cost is a clock read, a dict lookup and two mmap'd counter updates."""
from __future__ import annotations

import time

from asgiref.sync import markcoroutinefunction

from app.services.metrics import request_observe

UNMATCHED = "unmatched"  # no route (a 404 of the resolver)


class MetricsMiddleware:
    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        match = request.resolver_match
        request_observe(route=(match.url_name or match.view_name) if match else UNMATCHED, method=request.method,
                        status=response.status_code, seconds=time.perf_counter() - started)
        return response
