"""A worker's cache of rendered recommendation answers.

A known user's answer is a pure function of the served model version, the user and the page size: the
in-memory path reads nothing else (a user newer than the model, or with history the model has not seen, never
takes it). So the JSON of an answer can be kept and sent again until that model is replaced; a new version
makes every answer of the type unreachable at once (its version is part of the key) and they are dropped the
first time an answer of the new version is stored.

Bounded by the bytes it holds (MUSICBUD_ANSWER_CACHE_MB per worker, least recently used out first), so its
memory is known in advance. An answer's JSON is held compressed (zlib level 1: a page of 20 movies with their
details and explanations, ~8.2 kB, is ~1.7 kB; 20 us to compress once, 10 us to expand on each hit), so the
default 10 MB holds about 5,800 such pages (uncompressed, 6 MB held 750).
"""
from __future__ import annotations

import logging
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable

import orjson

from app.services import metrics  # the hit and miss counters every worker adds to /metrics

logger = logging.getLogger(__name__)

# MUSICBUD_ANSWER_CACHE_MB when it is not set: ~5,800 pages of 20 movies, compressed. A full cache costs a worker
# more than its size (keys, the LRU's links, the allocator): 6 MB of compressed answers added ~8 MB to a worker with
# the 1M models (483 MB in all, bench/memory.py), 8 MB of uncompressed ones had taken it to 501 MB (budget 500)
DEFAULT_MAX_MB = 10.0


class JsonFragment:
    """JSON text to be embedded as it is in a bigger answer (app/renderers.py does), not encoded again. Held
    zlib-compressed when that is smaller (every answer but the shortest): `text` and `fragment` expand it,
    len() is what it holds."""

    __slots__ = ("_held", "_packed", "trending_version")

    MIN_PACKED = 256  # shorter JSON ("[]", a page of two ids) is held as it is: compressing it saves nothing

    def __init__(self, text: bytes, *, trending_version: int | None = None) -> None:
        packed = zlib.compress(text, 1) if len(text) >= self.MIN_PACKED else None
        self._packed = packed is not None and len(packed) < len(text)
        self._held = packed if self._packed else text
        # the version of the trending scores an answer depends on (its chain reached the trending link), else None
        self.trending_version = trending_version

    @property
    def text(self) -> bytes:
        return zlib.decompress(self._held) if self._packed else self._held

    @property
    def fragment(self) -> orjson.Fragment:
        """What orjson embeds."""
        return orjson.Fragment(self.text)

    def __len__(self) -> int:
        return len(self._held)


@dataclass(frozen=True)
class Answer:
    """A service's answer: its JSON, and the version of the model that ranked every item of it (None when no
    model is trained; the API sends it as X-Model-Version); experiment: "<experiment>:<arm>" when the answer
    is an experiment arm's (X-Experiment)."""

    json: JsonFragment
    model_version: str | None
    experiment: str | None = None


class AnswerCache:
    """LRU of answers (bytes, or anything whose len() is its size in bytes) keyed by (model key, model version,
    *rest), at most `max_bytes` of values in all."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple, bytes | JsonFragment] = OrderedDict()
        self._versions: dict[str, str | None] = {}  # the newest version stored, per model key
        self._bytes = 0
        self._lock = threading.Lock()  # the event loop and worker threads (the all-types endpoint) share it
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, model_key: str, version: str | None, *rest: Hashable,
            valid: Callable[[bytes | JsonFragment], bool] | None = None) -> bytes | JsonFragment | None:
        """The stored answer (None: none, or one `valid` says is out of date)."""
        key = (model_key, version, *rest)
        with self._lock:
            value = self._entries.get(key)
            if value is not None and valid is not None and not valid(value):
                value = None
            if value is None:
                self.misses += 1
                metrics.ANSWER_CACHE_MISS.inc()
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            metrics.ANSWER_CACHE_HIT.inc()
            return value

    def get_or_make(self, model_key: str, version: str | None, *rest: Hashable,
                    make: Callable[[], bytes | JsonFragment],
                    valid: Callable[[bytes | JsonFragment], bool] | None = None) -> bytes | JsonFragment:
        """The stored answer, or make() stored and returned (made outside the lock: two threads asking for one
        missing answer may both make it; the answers are equal). A stored answer `valid` says is out of date
        (what it depends on besides its key moved) is made again, and counted as a miss."""
        value = self.get(model_key, version, *rest, valid=valid)
        if value is None:
            value = make()
            self.put(model_key, version, *rest, value=value)
        return value

    def put(self, model_key: str, version: str | None, *rest: Hashable, value: bytes | JsonFragment) -> None:
        """Keep `value`; an answer bigger than the whole cache is not kept. A version of `model_key` other than
        the last one stored drops every entry of that model first (they can never be asked for again)."""
        size = len(value)
        if size > self.max_bytes:
            return
        key = (model_key, version, *rest)
        with self._lock:
            if self._versions.get(model_key, version) != version:
                stale = [k for k in self._entries if k[0] == model_key and k[1] != version]
                for old in stale:
                    self._bytes -= len(self._entries.pop(old))
                logger.info("Answer cache: %s model is now version %s; dropped %d answers of older versions",
                            model_key, version, len(stale))
            self._versions[model_key] = version
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous)
            self._entries[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._versions.clear()
            self._bytes = 0
            self.hits = self.misses = 0
