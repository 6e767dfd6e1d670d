"""manage.py import_movielens: MovieLens ratings into the graph (mapping: app/importers/movielens.py)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from app.importers.common import import_command_run
from app.importers.movielens import movielens_100k_parse, movielens_latest_parse


class Command(BaseCommand):
    help = (
        "Import MovieLens ratings as ImdbMovie nodes, ml-<userId> users and LIKES (rating >= 4) / WATCHED edges. "
        "Either --ratings/--movies/--links (ml-latest-small) or --ml100k DIR (u.data, u.item). "
        "Every line is checked before anything is written; importing twice changes nothing."
    )
    requires_system_checks = []  # needs the graph, not the URLconf

    def add_arguments(self, parser):
        parser.add_argument("--ratings", type=Path, help="ml-latest ratings.csv (userId,movieId,rating,timestamp)")
        parser.add_argument("--movies", type=Path, help="ml-latest movies.csv (movieId,title,genres)")
        parser.add_argument("--links", type=Path, help="ml-latest links.csv (movieId,imdbId,tmdbId)")
        parser.add_argument("--ml100k", type=Path, metavar="DIR", help="an ml-100k directory with u.data and u.item")

    def handle(self, *args, ratings, movies, links, ml100k, verbosity, **options):
        latest = (ratings, movies, links)
        if ml100k is not None:
            if any(latest):
                raise CommandError("give either --ml100k DIR or --ratings/--movies/--links, not both")
            parse = lambda: movielens_100k_parse(directory=ml100k)  # noqa: E731
        elif all(latest):
            parse = lambda: movielens_latest_parse(ratings=ratings, movies=movies, links=links)  # noqa: E731
        else:
            raise CommandError("give --ratings, --movies and --links together (ml-latest-small), or --ml100k DIR")
        import_command_run(parse=parse, stdout=self.stdout, progress=verbosity >= 1)
