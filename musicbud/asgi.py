import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musicbud.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, then Django's handler minus its thread hops

from django.conf import settings  # noqa: E402

from musicbud.lean import LeanASGIHandler  # noqa: E402

application = LeanASGIHandler()

from app.services.model_registry import malloc_tune  # noqa: E402

malloc_tune()  # two C heaps for the request threads, large temporaries unmapped when freed (model_registry.py)

if settings.MUSICBUD_PRELOAD_MODELS:  # every worker loads the models before it serves
    from app.services.recommendation_service import models_preload  # noqa: E402

    models_preload()

if settings.MUSICBUD_LIVE:  # what users do reaches this worker's answers at once (app/services/live.py)
    from app.services.live import live  # noqa: E402

    live.start()

if settings.MUSICBUD_EXPERIMENTS:  # A/B counts are written in batches (app/services/experiment_outcomes.py)
    from app.services.experiment_outcomes import outcomes  # noqa: E402

    outcomes.start()
if settings.REDIS_URL:  # a new model version saved on any host is loaded at once (app/services/shared_state.py)
    from app.services.model_registry import registry  # noqa: E402
    from app.services.shared_state import model_versions_follow  # noqa: E402

    model_versions_follow(registry.announced)

if settings.MUSICBUD_TRAIN_EVERY:  # scheduled retraining, one job at a time (app/services/training_jobs.py)
    from app.services.training_jobs import training_schedule_start  # noqa: E402

    training_schedule_start()
