"""Trained models on disk: atomic, versioned, HMAC-verified.

Layout of MODEL_DIR (mode 0700), for a content type ``ct`` such as ``movie``::

    {ct}_manifest.json           the pointer: names the current version and holds every file's HMAC
    {ct}-{version}/              one directory per version, complete before the manifest names it
        {ct}_model.pkl           {"model": RecommenderBase, "popularity": PopularityRecommender,
                                  "trending": TrendingScores or None (ai/trending.py)}
        {ct}_user_map.pkl        external user id (str) -> row
        {ct}_item_map.pkl        external item id (str) -> column
        {ct}_matrix.pkl          the training interactions (users x items csr)
        {ct}_items.pkl           item id -> details (ai/item_details.py's ItemDetails)
        {ct}_dismissed.pkl       user id -> the item ids they dismissed

The manifest names the model's kind (ai/trained_model.py's TrainedModel, or ai/taste.py's TasteModel) and
the format of the files; another format is refused with a message to retrain.

Saving writes the files into a temporary directory, fsyncs them, renames the directory into place and
only then replaces the manifest (temp file, fsync, ``os.replace``), so a crash at any point leaves the
previous version current and loadable. Loading reads each file into memory and checks its HMAC-SHA256
(keyed with the service's secret, bound to content type, version and file name) before unpickling
anything: joblib unpickling runs code, so an unverified file is never unpickled. The manifest itself
is signed too, so a wrong key is refused up front.

Concurrent savers use unique temporary names and take a per-content-type lock (``fcntl.flock``) for the
rename / switch / prune step; the last one to switch wins. Readers need no lock.

Deleting a model (``delete_model``) removes its manifest first, atomically, then its version directories: from the
first step on no reader starts loading it, and a reader that had read the manifest finds a file missing and loads
nothing (files are verified, so half a model is never loaded); what a process already loaded stays in its memory.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp

from ai.item_details import ItemDetails
from ai.popularity import PopularityRecommender
from ai.recommender_base import RecommenderBase
from ai.taste import TasteModel
from ai.trained_model import TrainedModel
from ai.trending import TrendingScores

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: saves are still atomic, only not serialised
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_FORMAT",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "current_version",
    "delete_model",
    "load_model",
    "model_keys",
    "model_saved",
    "read_manifest",
    "save_model",
    "verified_files",
]

# 3: the engines' fitted state is ai/recommender_base.py's FactorState, the manifest names the model's kind, and
# the users' dismissals are a part. A manifest of another format was written by another version of the service:
# it is refused (retrain).
MANIFEST_FORMAT = 3
KINDS: dict[str, type[TrainedModel]] = {cls.kind: cls for cls in (TrainedModel, TasteModel)}
PARTS = ("model", "user_map", "item_map", "matrix", "items", "dismissed")
_CONTENT_TYPE = re.compile(r"^[a-z0-9_]{1,64}$")
_VERSION = r"\d{8}T\d{12}Z-[0-9a-f]{6}"
_STALE_TEMP_SECONDS = 3600.0
_RETRAIN = "retrain it (python manage.py train_models)"


class ModelNotFoundError(FileNotFoundError):
    """No trained model of that content type in the model directory."""


class ModelIntegrityError(RuntimeError):
    """A model file is missing, truncated, corrupt or was modified (or the HMAC key is wrong)."""


# --- paths and keys ----------------------------------------------------------------------------------
def _check_content_type(content_type: str) -> str:
    if not isinstance(content_type, str) or not _CONTENT_TYPE.match(content_type):
        raise ValueError(f"content type {content_type!r} must match {_CONTENT_TYPE.pattern} (it names files)")
    return content_type


def _check_key(hmac_key: bytes | str) -> bytes:
    key = hmac_key.encode() if isinstance(hmac_key, str) else bytes(hmac_key)
    if not key:
        raise ValueError("hmac_key is empty: set MUSICBUD_MODEL_HMAC_KEY (any long random secret)")
    return key


def _manifest_path(model_dir: str | os.PathLike, content_type: str) -> Path:
    return Path(model_dir) / f"{_check_content_type(content_type)}_manifest.json"


def _file_name(content_type: str, part: str) -> str:
    return f"{content_type}_{part}.pkl"


def _file_mac(key: bytes, content_type: str, version: str, name: str, data: bytes) -> str:
    mac = hmac.new(key, f"musicbud-model/{MANIFEST_FORMAT}\0{content_type}\0{version}\0{name}\0".encode(),
                   hashlib.sha256)
    mac.update(data)
    return mac.hexdigest()


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sign(key: bytes, manifest: dict) -> str:
    return hmac.new(key, b"musicbud-manifest\0" + _canonical(manifest), hashlib.sha256).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, datetime)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"manifest value {value!r} ({type(value).__name__}) is not JSON serialisable")


def _new_version() -> str:
    """UTC timestamp to the microsecond plus 6 random hex digits: sorts by time, unique across processes."""
    now = time.time_ns() // 1000
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000))
    return f"{stamp}{now % 1_000_000:06d}Z-{secrets.token_hex(3)}"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _ensure_dir(model_dir: str | os.PathLike) -> Path:
    directory = Path(model_dir)
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    return directory


@contextlib.contextmanager
def _locked(directory: Path, content_type: str) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(directory / f".{content_type}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


# --- save -------------------------------------------------------------------------------------------
def save_model(model_dir: str | os.PathLike, trained: TrainedModel, *, hmac_key: bytes,
               keep_versions: int = 2) -> str:
    """Write `trained` as a new version, switch the manifest to it, prune old versions; return the version.

    The manifest gets version, trained_at (kept if given), counts (users, items, interactions, added to
    any given) and every file's HMAC on top of what trained.manifest holds (metrics, parameters, engine...);
    trained.manifest is replaced by the saved one.
    """
    if keep_versions < 1:
        raise ValueError(f"keep_versions={keep_versions}: keep at least the current version (1)")
    key = _check_key(hmac_key)
    ct = _check_content_type(trained.content_type)
    directory = _ensure_dir(model_dir)
    version = _new_version()
    payload = {
        "model": {"model": trained.model, "popularity": trained.popularity, "trending": trained.trending},
        "user_map": dict(trained.user_map),
        "item_map": dict(trained.item_map),
        "matrix": sp.csr_matrix(trained.matrix),
        "items": trained.items,
        "dismissed": {user: list(items) for user, items in trained.dismissed.items()},
    }
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{ct}-{version}.", suffix=".tmp", dir=directory))  # mode 0700
    final_dir = directory / f"{ct}-{version}"
    switched = False
    try:
        files = {}
        for part, obj in payload.items():
            name = _file_name(ct, part)
            with open(tmp_dir / name, "wb") as f:
                joblib.dump(obj, f)
                f.flush()
                os.fsync(f.fileno())
            data = (tmp_dir / name).read_bytes()  # what is on disk is what gets authenticated
            files[name] = {"hmac": _file_mac(key, ct, version, name, data), "bytes": len(data)}
        _fsync_dir(tmp_dir)
        given = json.loads(json.dumps(trained.manifest or {}, default=_json_default))
        manifest = {
            **given,
            "format": MANIFEST_FORMAT,
            "content_type": ct,
            "kind": trained.kind,
            "version": version,
            "directory": final_dir.name,
            "trained_at": (trained.manifest or {}).get("trained_at")
            or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "counts": {**(given.get("counts") or {}), "users": int(trained.matrix.shape[0]),
                       "items": int(trained.matrix.shape[1]), "interactions": int(trained.matrix.nnz)},
            "files": files,
        }
        manifest["signature"] = _sign(key, manifest)
        with _locked(directory, ct):
            os.rename(tmp_dir, final_dir)
            _fsync_dir(directory)
            _write_atomic(_manifest_path(directory, ct), json.dumps(manifest, indent=2).encode())
            switched = True
            _prune(directory, ct, current=version, keep_versions=keep_versions)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not switched:  # the manifest still names the previous version: drop the unused new one
            shutil.rmtree(final_dir, ignore_errors=True)
        raise
    trained.manifest = manifest
    logger.info("saved %s model version %s in %s", ct, version, directory)
    return version


def _prune(directory: Path, content_type: str, *, current: str, keep_versions: int) -> None:
    """Remove versions beyond the newest keep_versions (never the current one) and stale temp dirs."""
    pattern = re.compile(rf"^{re.escape(content_type)}-({_VERSION})$")
    versions = sorted((m.group(1) for p in directory.iterdir() if (m := pattern.match(p.name))), reverse=True)
    keep = {current, *[v for v in versions if v != current][:keep_versions - 1]}
    for version in versions:
        if version not in keep:
            shutil.rmtree(directory / f"{content_type}-{version}", ignore_errors=True)
    now = time.time()
    for path in directory.glob(f".{content_type}-*.tmp"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > _STALE_TEMP_SECONDS:  # left by a crashed save
                shutil.rmtree(path, ignore_errors=True)


# --- list and delete --------------------------------------------------------------------------------
def model_keys(model_dir: str | os.PathLike) -> set[str]:
    """The keys ("content types") with a manifest or a version directory in `model_dir` (empty when there is none)."""
    directory = Path(model_dir)
    if not directory.is_dir():
        return set()
    pattern = re.compile(rf"^([a-z0-9_]{{1,64}})(?:_manifest\.json|-{_VERSION})$")
    return {m.group(1) for p in directory.iterdir() if (m := pattern.match(p.name))}


def delete_model(model_dir: str | os.PathLike, content_type: str) -> bool:
    """Remove every version of a model and its manifest; True when there was something to remove.

    Under the type's lock (a concurrent save waits, then writes a new model of that key: deleting is for models
    nothing saves any more): the manifest goes first (one unlink: from then on the model is not there), then each
    version directory is renamed away (no path names a half-removed version) and removed, then temporary
    directories of saves that crashed, then the lock file itself."""
    ct = _check_content_type(content_type)
    directory = Path(model_dir)
    if not directory.is_dir():
        return False
    pattern = re.compile(rf"^{re.escape(ct)}-{_VERSION}$")
    with _locked(directory, ct):
        manifest = _manifest_path(directory, ct)
        found = manifest.exists()
        manifest.unlink(missing_ok=True)
        _fsync_dir(directory)
        for path in list(directory.iterdir()):
            if pattern.match(path.name):
                found = True
                trash = directory / f".{path.name}.{secrets.token_hex(4)}.deleted"
                os.rename(path, trash)
                shutil.rmtree(trash, ignore_errors=True)
        now = time.time()
        for path in directory.glob(f".{ct}-*.tmp"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > _STALE_TEMP_SECONDS:  # left by a crashed save (not one under way)
                    shutil.rmtree(path, ignore_errors=True)
        (directory / f".{ct}.lock").unlink(missing_ok=True)
    _fsync_dir(directory)
    if found:
        logger.info("deleted the %s model from %s", ct, directory)
    return found


# --- load -------------------------------------------------------------------------------------------
def read_manifest(model_dir: str | os.PathLike, content_type: str) -> dict | None:
    """The current manifest (not verified: no key needed), or None when there is no model yet."""
    path = _manifest_path(model_dir, content_type)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ModelIntegrityError(f"{path}: not valid JSON ({exc}); {_RETRAIN}") from None
    if not isinstance(manifest, dict):
        raise ModelIntegrityError(f"{path}: not a JSON object; {_RETRAIN}")
    return manifest


def current_version(model_dir: str | os.PathLike, content_type: str) -> str | None:
    """The version the manifest points to, or None. Cheap: reads only the small manifest."""
    manifest = read_manifest(model_dir, content_type)
    return None if manifest is None else manifest.get("version")


def verified_files(model_dir: str | os.PathLike, content_type: str, *, hmac_key: bytes) -> dict[str, bytes]:
    """The current version's files as bytes, each verified against the manifest's HMAC ({part: bytes}), not
    unpickled; ModelNotFoundError / ModelIntegrityError as load_model."""
    key = _check_key(hmac_key)
    ct = _check_content_type(content_type)
    manifest = read_manifest(model_dir, ct)
    if manifest is None:
        raise ModelNotFoundError(f"no {ct!r} model in {Path(model_dir)}: train one first "
                                 "(python manage.py train_models)")
    return _verified_files(Path(model_dir), ct, manifest, key)


def model_saved(model_dir: str | os.PathLike, content_type: str) -> bool:
    """Whether a model of that type is saved in this service's format (a model of another version's format is
    as good as none: it will not be loaded). Reads only the manifest, verifies nothing."""
    try:
        manifest = read_manifest(model_dir, content_type)
    except ModelIntegrityError:
        return False
    return manifest is not None and manifest.get("format") == MANIFEST_FORMAT and manifest.get("kind") in KINDS


def load_model(model_dir: str | os.PathLike, content_type: str, *, hmac_key: bytes) -> TrainedModel:
    """The current version, every file's HMAC verified before anything is unpickled.

    ModelNotFoundError when there is no model; ModelIntegrityError (naming the file) when a file is
    missing, truncated, corrupt, modified, or the key is wrong.
    """
    key = _check_key(hmac_key)
    ct = _check_content_type(content_type)
    for _attempt in range(3):
        manifest = read_manifest(model_dir, ct)
        if manifest is None:
            raise ModelNotFoundError(f"no {ct!r} model in {Path(model_dir)}: train one first "
                                     "(python manage.py train_models)")
        try:
            blobs = _verified_files(Path(model_dir), ct, manifest, key)
        except ModelIntegrityError:
            if current_version(model_dir, ct) != manifest.get("version"):
                continue  # a concurrent save switched versions (and pruned ours) while we read: again
            raise
        return _unpickle(ct, manifest, blobs)
    raise ModelIntegrityError(f"the {ct!r} model in {model_dir} kept changing while loading; try again")


def _verified_files(directory: Path, ct: str, manifest: dict, key: bytes) -> dict[str, bytes]:
    manifest_path = _manifest_path(directory, ct)
    signature = manifest.get("signature")
    if not isinstance(signature, str) or not hmac.compare_digest(signature, _sign(key, manifest)):
        raise ModelIntegrityError(
            f"{manifest_path}: signature does not match: the HMAC key (MUSICBUD_MODEL_HMAC_KEY) differs from "
            f"the one that saved it, or the manifest was modified; {_RETRAIN}"
        )
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("kind") not in KINDS:
        raise ModelIntegrityError(
            f"{manifest_path}: format {manifest.get('format')!r} (kind {manifest.get('kind')!r}) was written by "
            f"another version of the service, which this one ({MANIFEST_FORMAT}) does not read; {_RETRAIN}")
    version = manifest.get("version", "")
    if manifest.get("content_type") != ct or manifest.get("directory") != f"{ct}-{version}":
        raise ModelIntegrityError(f"{manifest_path}: names another content type or directory; {_RETRAIN}")
    blobs = {}
    for part in PARTS:
        name = _file_name(ct, part)
        path = directory / manifest["directory"] / name
        expected = (manifest.get("files") or {}).get(name)
        if not isinstance(expected, dict):
            raise ModelIntegrityError(f"{path}: not listed in the manifest; {_RETRAIN}")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelIntegrityError(f"{path}: missing; {_RETRAIN}") from None
        if len(data) != expected.get("bytes"):
            raise ModelIntegrityError(
                f"{path}: {len(data)} bytes where the manifest says {expected.get('bytes')} (truncated or "
                f"overwritten); {_RETRAIN}"
            )
        if not hmac.compare_digest(_file_mac(key, ct, version, name, data), str(expected.get("hmac"))):
            raise ModelIntegrityError(f"{path}: HMAC mismatch (corrupt or modified); refusing to unpickle it; "
                                      f"{_RETRAIN}")
        blobs[part] = data
    return blobs


def _unpickle(ct: str, manifest: dict, blobs: dict[str, bytes]) -> TrainedModel:
    objs = {part: joblib.load(io.BytesIO(data)) for part, data in blobs.items()}  # verified bytes only
    engines = objs["model"]
    if not (isinstance(engines, dict) and isinstance(engines.get("model"), RecommenderBase)
            and isinstance(engines.get("popularity"), PopularityRecommender)
            and isinstance(engines.get("trending"), (TrendingScores, type(None)))):
        raise ModelIntegrityError(f"{_file_name(ct, 'model')}: does not hold {{model, popularity}} recommenders")
    return KINDS[manifest["kind"]](
        content_type=ct,
        model=engines["model"],
        popularity=engines["popularity"],
        user_map=objs["user_map"],  # made compact over the process's uid index (interned there) by the model
        item_map={sys.intern(key): column for key, column in objs["item_map"].items()},
        matrix=objs["matrix"],
        items=objs["items"] if isinstance(objs["items"], ItemDetails) else ItemDetails(objs["items"]),
        manifest=manifest,
        dismissed={sys.intern(user): items for user, items in objs["dismissed"].items()},
        trending=engines.get("trending"),  # absent from models saved before trending existed
    )


