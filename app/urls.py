from django.conf import settings
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from app import apis
from app.content_types import CONTENT_TYPES

# Django tries the patterns in order (each miss costs ~2 us), so the endpoints every client calls come first:
# the token check, then each type's recommendations (none of these literal paths overlaps another pattern).
urlpatterns = [path("ping/", apis.PingApi.as_view(), name="ping")]
urlpatterns += [path(f"recommendations/{ct.key}/", apis.TYPED_RECOMMENDATION_VIEWS[ct.key].as_view(),
                     name=f"recommendations-{ct.key}") for ct in CONTENT_TYPES]
urlpatterns += [
    path("login/", apis.LoginApi.as_view(), name="login"),
    path("token/refresh/", apis.TokenRefreshApi.as_view(), name="token-refresh"),
    path("health/", apis.HealthApi.as_view(), name="health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("recommendations/", apis.RecommendationsApi.as_view(), name="recommendations"),
    path("recommendations/public/", apis.PublicRecommendationsApi.as_view(), name="recommendations-public"),
    path("recommendations/train/models/", apis.TrainModelsApi.as_view(), name="train-models"),
    path("recommendations/buds/", apis.BudsApi.as_view(), name="recommendations-buds"),
]
urlpatterns += [path(f"recommendations/{ct.key}/<str:item_id>/similar/", apis.TYPED_SIMILAR_VIEWS[ct.key].as_view(),
                     name=f"similar-{ct.key}") for ct in CONTENT_TYPES]
if settings.MUSICBUD_BENCH_BASELINE:  # bench/serving.py only
    urlpatterns += [path("bench/seed-baseline/<str:type_key>/", apis.SeedBaselineRecommendationsApi.as_view(),
                         name="bench-seed-baseline")]
# Unknown types: the same views answer 404 with the supported types (kept out of the schema).
urlpatterns += [
    path("recommendations/<str:type_key>/", apis.RecommendationsByTypeApi.as_view(), name="recommendations-type"),
    path("recommendations/<str:type_key>/<str:item_id>/similar/", apis.SimilarItemsApi.as_view(),
         name="similar-type"),
]
