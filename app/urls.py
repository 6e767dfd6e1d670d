from django.conf import settings
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from app.content_types import CONTENT_TYPES
from app.views import auth_views, experiment_views, feedback_views, health_views
from app.views import discovery_views as discovery
from app.views import recommendations_views as recs
from app.views.base import path_alias
from app.views.static_views import same_origin_only

# Django tries the patterns in order (each miss costs ~2 us), so the endpoints every client calls come first:
# the token check, then each type's recommendations (none of these literal paths overlaps another pattern).
urlpatterns = [path("ping/", health_views.PingApi.as_view(), name="ping")]
urlpatterns += [path(f"recommendations/{ct.key}/", recs.TYPED_RECOMMENDATION_VIEWS[ct.key].as_view(),
                     name=f"recommendations-{ct.key}") for ct in CONTENT_TYPES]
urlpatterns += [
    # The MusicBud apps call several paths without the trailing slash, or by the names of another backend: each
    # is registered as it is called (APPEND_SLASH would answer a POST with a redirect no client follows).
    path("login/", auth_views.LoginApi.as_view(), name="login"),
    path("login", path_alias(auth_views.LoginApi, operation="login_no_slash").as_view(), name="login-no-slash"),
    path("auth/login", path_alias(auth_views.LoginApi, operation="auth_login").as_view(), name="auth-login"),
    path("auth/login/json", path_alias(auth_views.LoginApi, operation="auth_login_json").as_view(),
         name="auth-login-json"),
    path("token/refresh/", auth_views.TokenRefreshApi.as_view(), name="token-refresh"),
    path("token/refresh", path_alias(auth_views.TokenRefreshApi, operation="token_refresh_no_slash").as_view(),
         name="token-refresh-no-slash"),
    path("auth/refresh", path_alias(auth_views.TokenRefreshApi, operation="auth_refresh").as_view(),
         name="auth-refresh"),
    path("auth/me", auth_views.MeApi.as_view(), name="auth-me"),
    path("health/", health_views.HealthApi.as_view(), name="health"),
    path("health", path_alias(health_views.HealthApi, operation="health_no_slash").as_view(), name="health-no-slash"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", same_origin_only(SpectacularSwaggerView.as_view(url_name="schema")), name="docs"),
    path("redoc/", same_origin_only(SpectacularRedocView.as_view(url_name="schema", template_name="docs/redoc.html")),
         name="redoc"),
    path("recommendations/", recs.RecommendationsApi.as_view(), name="recommendations"),
    path("recommendations", path_alias(recs.RecommendationsApi, operation="recommendations_no_slash").as_view(),
         name="recommendations-no-slash"),
    path("recommendations/public/", recs.PublicRecommendationsApi.as_view(), name="recommendations-public"),
    path("recommendations/train/models/", recs.TrainModelsApi.as_view(), name="train-models"),
    path("recommendations/train/models/status/", recs.TrainingStatusApi.as_view(), name="train-models-status"),
    path("recommendations/buds/", recs.BudsApi.as_view(), name="recommendations-buds"),
    path("recommendations/feedback/", feedback_views.FeedbackApi.as_view(), name="recommendations-feedback"),
    # The guest discovery screens (Flutter's guest_service.dart, React Native's api.ts / contentApi.ts).
    path("discover/public/", discovery.DiscoverApi.as_view(), name="discover-public"),
    path("discover/public/trending/", discovery.TrendingApi.as_view(), name="discover-public-trending"),
    path("discover/public/trending", path_alias(discovery.TrendingApi, operation="trending_no_slash").as_view(),
         name="discover-public-trending-no-slash"),
    path("discover/public/genres/", discovery.GenresApi.as_view(), name="discover-public-genres"),
    path("discover/public/genres", path_alias(discovery.GenresApi, operation="genres_no_slash").as_view(),
         name="discover-public-genres-no-slash"),
    path("content/public/<str:content_type>/<str:item_id>/", discovery.ContentDetailsApi.as_view(),
         name="content-public-details"),
    path("discover/public/<str:content_type>/<str:item_id>/",
         path_alias(discovery.ContentDetailsApi, operation="discover_public_details").as_view(),
         name="discover-public-details"),
]
# A/B experiments (staff only; app/views/experiment_views.py)
urlpatterns += [
    path("experiments/", experiment_views.ExperimentsApi.as_view(), name="experiments"),
    path("experiments/<int:experiment_id>/", experiment_views.ExperimentApi.as_view(), name="experiment"),
    path("experiments/<int:experiment_id>/report/", experiment_views.ExperimentReportApi.as_view(),
         name="experiment-report"),
    path("experiments/<int:experiment_id>/stop/", experiment_views.ExperimentStopApi.as_view(), name="experiment-stop"),
    path("experiments/<int:experiment_id>/promote/", experiment_views.ExperimentPromoteApi.as_view(),
         name="experiment-promote"),
    path("experiments/promotions/<str:content_type>/", experiment_views.PromotionApi.as_view(),
         name="experiment-promotion"),
]
urlpatterns += [path(f"recommendations/{ct.key}/<str:item_id>/similar/", recs.TYPED_SIMILAR_VIEWS[ct.key].as_view(),
                     name=f"similar-{ct.key}") for ct in CONTENT_TYPES]
if settings.MUSICBUD_BENCH_BASELINE:  # bench/serving.py only
    urlpatterns += [path("bench/seed-baseline/<str:type_key>/", recs.SeedBaselineRecommendationsApi.as_view(),
                         name="bench-seed-baseline")]
# Unknown types: the same views answer with the supported types, 400 for recommendations (as the original
# backend did), 404 for similar items (kept out of the schema).
urlpatterns += [
    path("recommendations/<str:type_key>/", recs.RecommendationsByTypeApi.as_view(), name="recommendations-type"),
    path("recommendations/<str:type_key>/<str:item_id>/similar/", recs.SimilarItemsApi.as_view(),
         name="similar-type"),
]
