from django.conf import settings
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from app.content_types import CONTENT_TYPES
from app.views import auth_views, feedback_views, health_views
from app.views import recommendations_views as recs

# Django tries the patterns in order (each miss costs ~2 us), so the endpoints every client calls come first:
# the token check, then each type's recommendations (none of these literal paths overlaps another pattern).
urlpatterns = [path("ping/", health_views.PingApi.as_view(), name="ping")]
urlpatterns += [path(f"recommendations/{ct.key}/", recs.TYPED_RECOMMENDATION_VIEWS[ct.key].as_view(),
                     name=f"recommendations-{ct.key}") for ct in CONTENT_TYPES]
urlpatterns += [
    path("login/", auth_views.LoginApi.as_view(), name="login"),
    path("token/refresh/", auth_views.TokenRefreshApi.as_view(), name="token-refresh"),
    path("health/", health_views.HealthApi.as_view(), name="health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("recommendations/", recs.RecommendationsApi.as_view(), name="recommendations"),
    path("recommendations/public/", recs.PublicRecommendationsApi.as_view(), name="recommendations-public"),
    path("recommendations/train/models/", recs.TrainModelsApi.as_view(), name="train-models"),
    path("recommendations/buds/", recs.BudsApi.as_view(), name="recommendations-buds"),
    path("recommendations/feedback/", feedback_views.FeedbackApi.as_view(), name="recommendations-feedback"),
]
urlpatterns += [path(f"recommendations/{ct.key}/<str:item_id>/similar/", recs.TYPED_SIMILAR_VIEWS[ct.key].as_view(),
                     name=f"similar-{ct.key}") for ct in CONTENT_TYPES]
if settings.MUSICBUD_BENCH_BASELINE:  # bench/serving.py only
    urlpatterns += [path("bench/seed-baseline/<str:type_key>/", recs.SeedBaselineRecommendationsApi.as_view(),
                         name="bench-seed-baseline")]
# Unknown types: the same views answer 404 with the supported types (kept out of the schema).
urlpatterns += [
    path("recommendations/<str:type_key>/", recs.RecommendationsByTypeApi.as_view(), name="recommendations-type"),
    path("recommendations/<str:type_key>/<str:item_id>/similar/", recs.SimilarItemsApi.as_view(),
         name="similar-type"),
]
