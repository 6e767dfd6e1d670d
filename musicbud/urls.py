from django.urls import include, path

from app.views.base import path_alias
from app.views.health_views import HealthApi

urlpatterns = [
    path("v1/", include("app.urls")),
    # React Native's health check calls /health, outside /v1.
    path("health", path_alias(HealthApi, operation="health_root").as_view(), name="health-root"),
]

# --- Admin: dashboard, metrics, docs' static files --------------------------------------------------------
from app.views import dashboard_views as dashboard  # noqa: E402
from app.views.metrics_views import MetricsApi  # noqa: E402
from app.views.static_views import static_file  # noqa: E402

urlpatterns += [
    path("metrics", MetricsApi.as_view(), name="metrics"),
    path("static/<path:path>", static_file, name="static"),
    path("dashboard/", dashboard.dashboard_view, name="dashboard"),
    path("dashboard/status.json", dashboard.status_view, name="dashboard-status"),
    path("dashboard/train/", dashboard.train_view, name="dashboard-train"),
    path("dashboard/login/", dashboard.login_view, name="dashboard-login"),
    path("dashboard/logout/", dashboard.logout_view, name="dashboard-logout"),
]

# What no view answers (no pattern matches, Django refuses the request) is answered in the API's envelope too.
handler400 = "app.exception_handlers.bad_request"
handler403 = "app.exception_handlers.permission_denied"
handler404 = "app.exception_handlers.page_not_found"
handler500 = "app.exception_handlers.server_error"
