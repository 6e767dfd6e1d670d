"""manage.py import_manga: MyAnimeList manga catalogues (mapping: app/importers/mal.py)."""
from pathlib import Path

from django.core.management.base import BaseCommand

from app.importers.common import import_command_run
from app.importers.mal import manga_parse


class Command(BaseCommand):
    help = (
        "Import manga catalogues (manga_popular_jikan.csv and/or manga_jikan_by_id.csv; repeat --file, the "
        "first file with a value wins, later ones fill what is missing). Every line is checked first."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, action="append", required=True, dest="files",
                            help="a manga catalogue CSV (repeatable)")

    def handle(self, *args, files, verbosity, **options):
        import_command_run(parse=lambda: manga_parse(files=files), stdout=self.stdout, progress=verbosity >= 1)
