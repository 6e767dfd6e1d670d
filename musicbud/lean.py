"""The framework code this service copies, in one place: Django's ASGI request path and adrf's async dispatch
without the thread hops they make on every request.

Django's ASGIHandler sends `request_started` / `request_finished` through `sync_to_async` (a thread hop each,
in a thread created for every request by its ThreadSensitiveContext), MiddlewareMixin runs each middleware's
process_request / process_response in the same way, and adrf's APIView runs DRF's `initial` (authentication,
permissions, throttles) in a thread too. Measured under load (bench/serving.py, py-spy), that thread traffic
cost more than the whole DRF view plus JWT check. Here the hooks run on the event loop instead, which is safe
because they do no I/O:

- the sync receivers of those signals are Django's `reset_queries` / `close_old_connections` (and the cache
  and urlconf resets): they only touch database connections opened in the *calling* context, and nothing
  opens one on the event loop (Django forbids it there; views reach the database through worker threads);
- Security/CommonMiddleware look at headers and settings only;
- `initial` is in-memory for the views that keep `initial_in_thread = False` (stateless JWT, no throttle);
  a view whose checks read the database or files sets it and gets a thread.

Anything that does need a thread still gets one (sync views, a receiver that is async: it is awaited), and
ThreadSensitiveContext is kept, so a sync view still runs in a thread of its own request.

Each copy names the version it was taken from (COPIED_FROM) and the SHA-256 of the original's source
(ORIGINALS); tests/musicbud/test_lean.py fails, naming this file, when the installed framework differs, so a
framework upgrade means reading the new original and carrying its changes over here first.
"""
from __future__ import annotations

import asyncio

from adrf.views import APIView as AdrfAPIView
from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.urls import set_script_prefix

# The distributions the copies below were taken from.
COPIED_FROM = {"django": "5.2.19", "adrf": "0.1.14"}
# The originals each copy follows, by the SHA-256 of their source text (inspect.getsource).
ORIGINALS = {
    "django.core.handlers.asgi.ASGIHandler.handle":
        "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323",
    "django.utils.deprecation.MiddlewareMixin.__acall__":
        "adf8cbcaf9f11e45c4ac1953556ac422f2a6fe4193df5edbed186b2b66bea729",
    "adrf.views.APIView.async_dispatch":
        "5926f734eb685633df0c80f431d70f15451e7c57b464fec59295c94db9b10718",
}


async def _send_inline(signal, sender, **named) -> None:
    """Signal.asend, with the sync receivers called on the loop instead of behind a thread hop."""
    if not signal.receivers:
        return
    sync_receivers, async_receivers = signal._live_receivers(sender)
    for receiver in sync_receivers:
        receiver(signal=signal, sender=sender, **named)
    if async_receivers:
        await asyncio.gather(*(receiver(signal=signal, sender=sender, **named) for receiver in async_receivers))


async def _close(response) -> None:
    """response.close() (which sends request_finished) on the loop when every receiver is sync, as Django's are."""
    sender = getattr(response, "_handler_class", None)
    if signals.request_finished.receivers and signals.request_finished._live_receivers(sender)[1]:
        await sync_to_async(response.close)()
    else:
        response.close()


class LeanASGIHandler(ASGIHandler):
    """ASGIHandler.handle (Django 5.2) with the request signals and the response close run inline."""

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await _send_inline(signals.request_started, sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await _close(error_response)
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected while the response was being sent
            return response

        # As Django does: answer, unless the client disconnects first (then cancel the view).
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await _send_inline(signals.request_finished, sender=self.__class__)
        else:
            await _close(response)
        body_file.close()


class _InlineHooks:
    """MiddlewareMixin's async mode, minus a thread hop around each hook (for hooks that do no I/O)."""

    async def __acall__(self, request):
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class SecurityMiddleware(_InlineHooks, DjangoSecurityMiddleware):
    pass


class CommonMiddleware(_InlineHooks, DjangoCommonMiddleware):
    pass


def _rendered(response) -> HttpResponse:
    """The DRF response rendered here, as a plain HttpResponse: on the async path Django renders a template
    response (DRF's Response is one) behind a thread hop, which costs more than the rendering itself."""
    if not hasattr(response, "render"):  # a view that answered a plain HttpResponse (/metrics' text format)
        return response
    response.render()
    plain = HttpResponse(response.content, status=response.status_code)
    for header, value in response.items():
        plain[header] = value
    plain.cookies = response.cookies
    return plain


class LeanAPIView(AdrfAPIView):
    """adrf's APIView.async_dispatch (0.1.14) minus its thread hop around `initial`, plus two hooks the service's
    base view fills in: `check_request` runs first (the body size), and a method the view lacks is answered
    405 before authentication (whoever asks), where DRF would authenticate first."""

    initial_in_thread = False

    def check_request(self, request) -> None:
        """Checks before anything else (none here)."""

    async def async_dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.check_request(request)
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                self.http_method_not_allowed(request, *args, **kwargs)
            if self.initial_in_thread:
                await sync_to_async(self.initial, thread_sensitive=False)(request, *args, **kwargs)
            else:
                self.initial(request, *args, **kwargs)
            response = await handler(request, *args, **kwargs) if asyncio.iscoroutinefunction(handler) \
                else handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return _rendered(self.response)
