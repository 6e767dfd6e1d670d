"""manage.py import_mal: MyAnimeList anime catalogues and user ratings (mapping: app/importers/mal.py)."""
from pathlib import Path

from django.core.management.base import BaseCommand

from app.importers.common import import_command_run
from app.importers.mal import mal_parse


class Command(BaseCommand):
    help = (
        "Import anime catalogues (Kaggle anime.csv and/or Jikan anime_popular_jikan.csv; repeat --anime, the "
        "first file with a value wins) and optionally ratings (user_id,anime_id,rating: every row a TOP_ANIME "
        "edge, 1-10 stored as its score, -1 without). Every line is checked before anything is written."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--anime", type=Path, action="append", required=True,
                            help="an anime catalogue CSV (repeatable)")
        parser.add_argument("--ratings", type=Path, help="ratings CSV: user_id,anime_id,rating (-1 = unrated)")

    def handle(self, *args, anime, ratings, verbosity, **options):
        import_command_run(parse=lambda: mal_parse(anime=anime, ratings=ratings), stdout=self.stdout,
                           progress=verbosity >= 1)
