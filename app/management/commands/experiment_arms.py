"""The job process of an experiment's creation: fit and save its arms' models (app/services/experiments.py)."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from app.errors import ApplicationError
from app.services.experiment_arms import experiment_arms_train


class Command(BaseCommand):
    help = "Fit an experiment's engine arms on the type's served model's interactions and save them (a job)."

    def add_arguments(self, parser):
        parser.add_argument("--spec", required=True, help="JSON file: {experiment, type, arms: [...]}")
        parser.add_argument("--out", required=True, help="where to write {model key: version}")

    def handle(self, *args, spec, out, **options):
        try:
            versions = experiment_arms_train(spec=json.loads(Path(spec).read_text()))
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        tmp = Path(out).with_suffix(".tmp")
        tmp.write_text(json.dumps(versions))
        tmp.replace(out)  # the parent reads it only once it is whole
        self.stdout.write(f"Fitted {len(versions)} arm model(s): {versions}")
