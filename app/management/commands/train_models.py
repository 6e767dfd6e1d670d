from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ai.model_store import model_saved
from app.content_types import CONTENT_TYPES
from app.errors import ApplicationError
from app.services.health import MODEL_KEYS
from app.services.recommendation_service import models_train


class Command(BaseCommand):
    help = "Train the recommendation models of every content type (or --type ...) from the graph."

    def add_arguments(self, parser):
        parser.add_argument("--type", action="append", dest="types", choices=[ct.key for ct in CONTENT_TYPES],
                            help="train only this content type (repeatable)")
        parser.add_argument("--job", help="run as this training job (the training endpoint's; reports its status)")
        parser.add_argument("--if-missing", action="store_true",
                            help="train only when no model is saved yet (in this version's format)")

    def handle(self, *args, types=None, if_missing=False, job=None, **options):
        if if_missing and any(model_saved(settings.MUSICBUD_MODEL_DIR, key) for key in MODEL_KEYS):
            self.stdout.write("Models already trained; skipping (drop --if-missing to retrain).")
            return
        try:
            results = models_train(content_types=types, show_progress=job is None, job_id=job)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for key, ok in results.items():
            self.stdout.write(f"  {key:8s} {'trained' if ok else 'not trained (see log)'}")
        for line in selection_lines():
            self.stdout.write(line)


def selection_lines() -> list[str]:
    """Each trained type's model selection table, as lines (the served models' manifests)."""
    from app.services.model_registry import registry
    from app.services.training import selection_table_lines

    lines = []
    for ct in CONTENT_TYPES:
        model = registry.get(ct.model_key)
        if model is not None and model.manifest.get("selection"):
            lines.extend(selection_table_lines(key=ct.model_key, selection=model.manifest["selection"]))
    return lines
