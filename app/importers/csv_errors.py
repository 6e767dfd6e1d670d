"""Reading and validating the importers' CSV files: every error names the file and the line.

The importers parse and check a whole file before anything is written; the first malformed line raises
ImportFileError ("ratings.csv line 17: rating 'abc' is not a number"), which the management commands turn
into a CommandError (exit status 1, no traceback) with the graph untouched.

Line numbers are the physical line where a record starts (1 is the header), so quoted fields that span
several lines (the manga synopses) still point at the right place.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

csv.field_size_limit(16 * 1024 * 1024)  # long synopses


class ImportFileError(Exception):
    """A file that cannot be imported as it is; str() is "<file> line <n>: <problem>"."""

    def __init__(self, file: str | Path, line: int | None, problem: str):
        self.file = Path(file).name
        self.line = line
        self.problem = problem
        where = f"{self.file} line {line}" if line is not None else self.file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Cell:
    """Where a value comes from, for error messages."""

    file: Path
    line: int

    def error(self, problem: str) -> ImportFileError:
        return ImportFileError(self.file, self.line, problem)


def records(path: Path, *, encoding: str = "utf-8-sig", delimiter: str = ",", columns: Sequence[str] | None = None,
            required: Sequence[str] = (), quoting: int = csv.QUOTE_MINIMAL) -> Iterator[tuple[Cell, dict[str, str]]]:
    """(where, {column: value}) for every non-blank record of a delimited file.

    With `columns`, the file has no header and each line must have exactly that many fields; otherwise the
    first line is the header, which must name every column in `required`, and each record must have as many
    fields as the header. Blank lines are skipped. Raises ImportFileError on the first problem.
    `quoting=csv.QUOTE_NONE` reads files whose fields are never quoted (MovieLens 100K: a '"' is text).
    """
    path = Path(path)
    try:
        handle = open(path, newline="", encoding=encoding)
    except OSError as exc:
        raise ImportFileError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting, strict=quoting != csv.QUOTE_NONE)
        header: list[str] | None = list(columns) if columns is not None else None
        line = 1  # the physical line where the next record starts
        try:
            for fields in reader:
                where = Cell(path, line)
                line = reader.line_num + 1
                if not fields or fields == [""]:
                    continue
                if header is None:
                    header = [h.strip() for h in fields]
                    absent = [c for c in required if c not in header]
                    if absent:
                        raise where.error(
                            f"header {','.join(header)!r} lacks the column(s) {', '.join(absent)}; "
                            f"expected {','.join(required)}")
                    continue
                if len(fields) != len(header):
                    raise where.error(f"expected {len(header)} fields ({','.join(header)}), found {len(fields)}")
                yield where, dict(zip(header, fields))
        except csv.Error as exc:
            raise ImportFileError(path, line, f"malformed CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ImportFileError(path, line, f"is not valid {encoding} text ({exc.reason})") from None
        if header is None and columns is None:
            raise ImportFileError(path, None, "is empty (no header line)")


def parse_int(value: str, *, where: Cell, field: str, minimum: int | None = None) -> int:
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        raise where.error(f"{field} {value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise where.error(f"{field} {number} is below {minimum}")
    return number


def parse_float(value: str, *, where: Cell, field: str, minimum: float | None = None,
                maximum: float | None = None) -> float:
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        raise where.error(f"{field} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise where.error(f"{field} {value!r} is not a number")
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        low = "" if minimum is None else f"{minimum:g}"
        high = "" if maximum is None else f"{maximum:g}"
        raise where.error(f"{field} {number:g} is out of range {low}..{high}")
    return number


def optional_float(value: str, *, where: Cell, field: str, minimum: float | None = None,
                   maximum: float | None = None) -> float | None:
    """None for an empty cell, else parse_float."""
    return None if not value.strip() else parse_float(value, where=where, field=field, minimum=minimum,
                                                      maximum=maximum)
