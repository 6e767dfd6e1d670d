"""The staff dashboard at /dashboard/: server-rendered (Django templates), a session login, CSRF on every POST,
and nothing loaded from elsewhere (styles and the script are inline, plots are inline SVG).

The session, authentication and CSRF middleware wrap these views only (decorators), so the API's requests never
pay for them. The views are sync: Django runs them in a thread, where the ORM (sessions, users) may be used."""
from __future__ import annotations

import logging
from functools import wraps

from django.contrib.auth import logout
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.views import LoginView, redirect_to_login
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from app.errors import TrainingInProgressError
from app.services.dashboard import dashboard_get, live_status
from app.services.training_jobs import training_job_start
from app.views.static_views import same_origin_only

logger = logging.getLogger(__name__)

_sessions = decorator_from_middleware(SessionMiddleware)
_users = decorator_from_middleware(AuthenticationMiddleware)


def with_session(view):
    """Sessions, then the user, then CSRF: what Django's middleware would do, for this view alone; nothing loaded
    from elsewhere (static_views.SAME_ORIGIN_ONLY)."""
    return same_origin_only(_sessions(_users(csrf_protect(view))))


def staff_required(view):
    """Not logged in: the login page. Logged in but not staff: 403, with a page that says so."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            logger.warning("Dashboard refused to non-staff user %s", user.get_username())
            return render(request, "dashboard/forbidden.html", {"user": user}, status=403)
        return view(request, *args, **kwargs)

    return checked


class DashboardLoginView(LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = False

    def get_default_redirect_url(self):
        return "/dashboard/"


login_view = with_session(DashboardLoginView.as_view())


@with_session
@require_POST
def logout_view(request):
    logout(request)
    return redirect("/dashboard/login/")


@with_session
@require_GET
@staff_required
def dashboard_view(request):
    return render(request, "dashboard/index.html", {**dashboard_get(), "user": request.user,
                                                     "notice": request.GET.get("notice", "")})


@with_session
@require_GET
@staff_required
def status_view(request):
    return JsonResponse(live_status())


@with_session
@require_POST
@staff_required
def train_view(request):
    try:
        status = training_job_start()
    except TrainingInProgressError:
        return redirect("/dashboard/?notice=A+training+is+already+running")
    logger.info("Training job %s started from the dashboard by %s", status["job_id"], request.user.get_username())
    return redirect(f"/dashboard/?notice=Training+job+{status['job_id']}+started")
