"""What every importer produces (a fully parsed, validated import) and the one function that writes it."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tqdm import tqdm

from app.content_types import ContentType
from app.services.graph_writes import interactions_upsert, items_upsert, users_upsert


@dataclass
class ParsedImport:
    """Items, users and interactions of one content type, already checked: writing them cannot fail on input.

    `interactions` are interactions_upsert rows; a list, or a one-shot iterable for files too large to hold
    as dicts (its length is then `interaction_count`).
    """

    content_type: ContentType
    items: list[dict]
    users: list[dict] = field(default_factory=list)
    interactions: Iterable[dict] = ()
    interaction_count: int = 0
    notes: list[str] = field(default_factory=list)  # what the parse skipped or assumed, for the summary
    fill_only: bool = False  # items only fill properties the graph lacks (see items_upsert)


@dataclass
class ImportReport:
    label: str
    items: int
    users: int
    edges: dict[str, int]
    seconds: float
    edge_seconds: float
    notes: list[str]

    @property
    def edge_count(self) -> int:
        return sum(self.edges.values())

    @property
    def edges_per_second(self) -> float:
        return self.edge_count / self.edge_seconds if self.edge_seconds > 0 else 0.0

    def summary(self) -> str:
        by_type = ", ".join(f"{rel} {n:,}" for rel, n in sorted(self.edges.items()))
        lines = [
            f"{self.items:,} {self.label} items, {self.users:,} users, {self.edge_count:,} edges"
            + (f" ({by_type})" if by_type else "") + f" in {self.seconds:.1f}s"
            + (f"; edges at {self.edges_per_second:,.0f}/s" if self.edge_count else ""),
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _bar(desc: str, total: int, enabled: bool):
    return tqdm(total=total, desc=desc, unit="row", disable=not enabled, file=sys.stderr, mininterval=0.5,
                dynamic_ncols=True)


def parsed_import_write(*, parsed: ParsedImport, progress: bool = True) -> ImportReport:
    """Write items, then users with their accounts, then interactions (all MERGE: idempotent)."""
    ct = parsed.content_type
    started = time.perf_counter()
    with _bar(f"{ct.key} items", len(parsed.items), progress) as bar:
        items = items_upsert(content_type=ct, rows=parsed.items, progress=bar, fill_only=parsed.fill_only)
    users = 0
    if parsed.users:
        accounts = sum(len(u.get("accounts") or ()) for u in parsed.users)
        with _bar("users", len(parsed.users) + accounts, progress) as bar:
            users_upsert(rows=parsed.users, progress=bar)
        users = len(parsed.users)
    edge_started = time.perf_counter()
    edges: dict[str, int] = {}
    if parsed.interaction_count:
        with _bar(f"{ct.key} edges", parsed.interaction_count, progress) as bar:
            edges = interactions_upsert(content_type=ct, rows=parsed.interactions, progress=bar)
    finished = time.perf_counter()
    return ImportReport(label=ct.key, items=items, users=users, edges=edges, seconds=finished - started,
                        edge_seconds=finished - edge_started, notes=list(parsed.notes))


def import_command_run(*, parse: Callable[[], ParsedImport], stdout, progress: bool) -> ImportReport:
    """What every import command does: parse and check everything, then write; errors become CommandError
    (exit status 1, one line naming the file and line, no traceback) and leave the graph untouched."""
    from django.core.management.base import CommandError
    from neo4j.exceptions import Neo4jError, ServiceUnavailable

    from app.importers.csv_errors import ImportFileError
    from app.services.graph_writes import GraphWriteError

    try:
        parsed = parse()
    except ImportFileError as exc:
        raise CommandError(f"{exc} (nothing was imported)") from None
    try:
        report = parsed_import_write(parsed=parsed, progress=progress)
    except ServiceUnavailable as exc:
        raise CommandError(f"Neo4j is not reachable ({exc}); start it with `make neo4j-start` "
                           "or set NEO4J_BOLT_URL") from None
    except (GraphWriteError, Neo4jError) as exc:
        raise CommandError(f"writing to Neo4j failed: {exc}") from None
    stdout.write(report.summary())
    return report
