from django.urls import include, path

from app.views.base import path_alias
from app.views.health_views import HealthApi

urlpatterns = [
    path("v1/", include("app.urls")),
    # React Native's health check calls /health, outside /v1.
    path("health", path_alias(HealthApi, operation="health_root").as_view(), name="health-root"),
]
