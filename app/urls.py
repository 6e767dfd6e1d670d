from django.urls import path

from app import apis

urlpatterns = [
    path("health/", apis.HealthApi.as_view(), name="health"),
]
