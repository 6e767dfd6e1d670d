from django.core.management.base import BaseCommand

from app.services.graph_schema import constraints_install


class Command(BaseCommand):
    help = "Install the uniqueness constraints of the MusicBud graph in Neo4j (idempotent)."

    def handle(self, *args, **options):
        names = constraints_install()
        self.stdout.write(self.style.SUCCESS(f"{len(names)} constraints in place."))
