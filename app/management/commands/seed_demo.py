"""manage.py seed_demo: a synthetic, deterministic MusicBud graph plus the demo logins (app/services/demo_data.py)."""
from datetime import datetime, timezone

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from app.services.demo_data import demo_seed


def _date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise CommandError(f"--until {value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Seed Neo4j with synthetic users, items of every content type and interactions driven by 8 latent taste "
        "clusters shared across domains (stored as ParentUser.demo_taste). Same arguments => same graph; running "
        "twice changes nothing. Also creates the Django logins MUSICBUD_DEMO_ADMIN_USER (staff, default admin) "
        "and MUSICBUD_DEMO_USER (default demo); passwords from MUSICBUD_DEMO_ADMIN_PASSWORD / "
        "MUSICBUD_DEMO_USER_PASSWORD, else generated and printed once. Existing logins are left untouched."
    )
    requires_system_checks = []  # needs the graph and the auth tables, not the URLconf

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--users", type=int, default=500)
        parser.add_argument("--items-per-type", type=int, default=400)
        parser.add_argument("--interactions-per-user", type=float, default=30,
                            help="mean interactions per user over all content types (default 30)")
        parser.add_argument("--until", type=_date, default=None,
                            help="end of the two years of history, YYYY-MM-DD (default: today, UTC)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when any ParentUser exists")

    def handle(self, *args, seed, users, items_per_type, interactions_per_user, until, if_empty, verbosity,
               **options):
        if users < 0 or items_per_type < 1 or interactions_per_user <= 0:
            raise CommandError("--users >= 0, --items-per-type >= 1 and --interactions-per-user > 0, please")
        from neo4j.exceptions import ServiceUnavailable

        try:
            report = demo_seed(seed=seed, users=users, items_per_type=items_per_type,
                               interactions_per_user=interactions_per_user, until=until, if_empty=if_empty,
                               progress=verbosity >= 1)
        except ServiceUnavailable as exc:
            raise CommandError(f"Neo4j is not reachable ({exc}); start it with `make neo4j-start`") from None
        except DatabaseError as exc:
            raise CommandError(f"the auth database is not ready ({exc}); run `manage.py migrate` first") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if report is None:
            self.stdout.write("The graph already has users: nothing seeded (--if-empty).")
            return
        g, w = report.generated, report.written
        edges = ", ".join(f"{k} {sum(v.values()):,}" for k, v in w.edges.items())
        self.stdout.write(
            f"Seeded {len(g.users):,} users, {sum(w.items.values()):,} items and {w.edge_count:,} edges ({edges}) "
            f"with seed {seed}: generated in {g.seconds:.1f}s, written in {w.seconds:.1f}s "
            f"(edges at {w.edges_per_second:,.0f}/s).")
        for u in report.auth_users:
            role = "staff" if u.staff else "user"
            if not u.created:
                self.stdout.write(f"Django {role} {u.username!r} exists: left as it is (password unchanged).")
            elif u.password:
                self.stdout.write(self.style.WARNING(
                    f"Created Django {role} {u.username!r} with password {u.password}  (shown once: note it)"))
            else:
                self.stdout.write(f"Created Django {role} {u.username!r} (password {u.password_source}).")
