from django.apps import AppConfig


class MusicBudAppConfig(AppConfig):
    name = "app"
    verbose_name = "MusicBud Recommendations"
    default_auto_field = "django.db.models.BigAutoField"
