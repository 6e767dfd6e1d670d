"""Trained models on disk: round trip, crash safety, integrity checks, pruning, serving helpers."""
from __future__ import annotations

import json
import os
import pickle
import stat
import threading

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

from ai import model_store
from ai.model_store import (
    ModelIntegrityError,
    ModelNotFoundError,
    current_version,
    delete_model,
    load_model,
    model_keys,
    read_manifest,
    save_model,
)
from ai.recommendation_engine import LightFMRecommender, PopularityRecommender
from ai.trained_model import TrainedModel
from tests.ai.test_recommender_base import as_saved_before_float16

KEY = b"test-hmac-key-0123456789"
CT = "movie"


def build_trained(seed: int = 0) -> TrainedModel:
    """12 users, 10 items in two taste groups (even users like items 0-4, odd users 5-9), item 0 the
    most popular; user "u0" has items 0, 1, 2."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((12, 10), dtype=np.float32)
    for user in range(12):
        group = range(0, 5) if user % 2 == 0 else range(5, 10)
        for item in group:
            if rng.random() < 0.6:
                dense[user, item] = float(rng.integers(1, 6))
    dense[:, 0] = np.where(np.arange(12) % 3 == 0, 5.0, dense[:, 0])
    dense[0] = [3, 4, 5, 0, 0, 0, 0, 0, 0, 0]
    matrix = sp.csr_matrix(dense)
    return TrainedModel(
        content_type=CT,
        model=LightFMRecommender(no_components=4, epochs=10, num_threads=1, random_state=seed).fit(matrix),
        popularity=PopularityRecommender().fit(matrix),
        user_map={f"u{i}": i for i in range(12)},
        item_map={f"tt{i:07d}": i for i in range(10)},
        matrix=matrix,
        items={f"tt{i:07d}": {"title": f"Movie {i}"} for i in range(10)},
        manifest={"metrics": {"precision_at_k": np.float64(0.25)}, "parameters": {"epochs": 10}, "engine": "lightfm",
                  "counts": {"held_out": 3}},
    )


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return build_trained()


@pytest.fixture
def model_dir(tmp_path):
    return tmp_path / "models"


def version_dirs(model_dir) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def file_of(model_dir, part: str):
    version = current_version(model_dir, CT)
    return model_dir / f"{CT}-{version}" / f"{CT}_{part}.pkl"


class TestRoundTrip:
    def test_a_loaded_model_recommends_what_the_saved_one_did(self, trained, model_dir):
        version = save_model(model_dir, trained, hmac_key=KEY)
        loaded = load_model(model_dir, CT, hmac_key=KEY)
        assert loaded.manifest["version"] == version == current_version(model_dir, CT)
        for user in ("u0", "u3", "nobody", None):
            assert loaded.recommend(user, n=5) == trained.recommend(user, n=5)
        assert loaded.items == trained.items and loaded.user_map == trained.user_map

    def test_a_model_saved_with_float32_user_factors_loads_with_float16_ones_and_recommends_the_same(
            self, model_dir):
        old = build_trained()
        expected = {user: old.recommend(user, n=5) for user in ("u0", "u3", "u7")}
        as_saved_before_float16(old.model, old.model.user_factors[:, :-1])
        save_model(model_dir, old, hmac_key=KEY)
        loaded = load_model(model_dir, CT, hmac_key=KEY)
        assert loaded.model._fitted().user_directions.dtype == np.float16
        for user, answer in expected.items():
            assert [r[0] for r in loaded.recommend(user, n=5)] == [r[0] for r in answer]

    def test_a_loaded_model_keeps_one_copy_of_the_matrix_its_engines_were_fitted_on(self, trained, model_dir):
        save_model(model_dir, trained, hmac_key=KEY)
        loaded = load_model(model_dir, CT, hmac_key=KEY)
        assert loaded.popularity._fitted().seen.matrix is loaded.matrix
        assert loaded.model._fitted().seen.matrix is loaded.matrix
        assert (loaded.matrix != trained.matrix).nnz == 0

    def test_it_keeps_the_seeds_file_names(self, trained, model_dir):
        version = save_model(model_dir, trained, hmac_key=KEY)
        assert (model_dir / f"{CT}_manifest.json").is_file()
        assert sorted(p.name for p in (model_dir / f"{CT}-{version}").iterdir()) == sorted(
            f"{CT}_{part}.pkl" for part in ("model", "user_map", "item_map", "matrix", "items", "dismissed"))

    def test_the_manifest_holds_counts_metrics_and_a_hmac_per_file(self, trained, model_dir):
        save_model(model_dir, trained, hmac_key=KEY)
        manifest = read_manifest(model_dir, CT)
        assert manifest["counts"] == {"users": 12, "items": 10, "interactions": trained.matrix.nnz, "held_out": 3}
        assert manifest["metrics"] == {"precision_at_k": 0.25} and manifest["engine"] == "lightfm"
        assert manifest["trained_at"].endswith("+00:00")
        assert all(len(entry["hmac"]) == 64 for entry in manifest["files"].values())
        assert len(manifest["files"]) == len(model_store.PARTS) == 6

    def test_versions_sort_in_save_order(self, trained, model_dir):
        versions = [save_model(model_dir, trained, hmac_key=KEY, keep_versions=5) for _ in range(3)]
        assert versions == sorted(versions) and len(set(versions)) == 3

    def test_it_creates_the_model_dir_private(self, trained, model_dir):
        save_model(model_dir, trained, hmac_key=KEY)
        assert stat.S_IMODE(model_dir.stat().st_mode) == 0o700

    def test_a_missing_model_is_not_found_and_has_no_version(self, model_dir):
        assert current_version(model_dir, CT) is None and read_manifest(model_dir, CT) is None
        with pytest.raises(ModelNotFoundError, match="train_models"):
            load_model(model_dir, CT, hmac_key=KEY)

    def test_old_versions_are_pruned_after_the_switch(self, trained, model_dir):
        versions = [save_model(model_dir, trained, hmac_key=KEY, keep_versions=2) for _ in range(4)]
        assert version_dirs(model_dir) == [f"{CT}-{v}" for v in versions[-2:]]
        assert current_version(model_dir, CT) == versions[-1]

    def test_another_content_type_is_left_alone(self, trained, model_dir):
        other = build_trained()
        other.content_type = "anime"
        save_model(model_dir, other, hmac_key=KEY)
        for _ in range(3):
            save_model(model_dir, trained, hmac_key=KEY, keep_versions=1)
        assert load_model(model_dir, "anime", hmac_key=KEY).content_type == "anime"

    def test_it_refuses_a_content_type_that_is_not_a_plain_name(self, trained, model_dir):
        with pytest.raises(ValueError, match="names files"):
            load_model(model_dir, "../etc", hmac_key=KEY)


class TestCrashSafety:
    def test_a_save_failing_midway_leaves_the_old_model_current_and_loadable(self, trained, model_dir,
                                                                            monkeypatch):
        old = save_model(model_dir, trained, hmac_key=KEY)
        calls = {"n": 0}
        real_dump = joblib.dump

        def failing_dump(obj, target, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk full")
            return real_dump(obj, target, *args, **kwargs)

        monkeypatch.setattr(model_store.joblib, "dump", failing_dump)
        with pytest.raises(OSError, match="disk full"):
            save_model(model_dir, build_trained(seed=1), hmac_key=KEY)
        assert current_version(model_dir, CT) == old
        assert load_model(model_dir, CT, hmac_key=KEY).recommend("u0", n=3) == trained.recommend("u0", n=3)
        assert version_dirs(model_dir) == [f"{CT}-{old}"]
        assert not [p for p in model_dir.iterdir() if p.name.endswith(".tmp")]

    def test_a_crash_at_the_manifest_switch_leaves_the_old_model_current(self, trained, model_dir, monkeypatch):
        old = save_model(model_dir, trained, hmac_key=KEY)

        def failing_replace(src, dst):
            raise OSError("power cut")

        monkeypatch.setattr(model_store.os, "replace", failing_replace)
        with pytest.raises(OSError, match="power cut"):
            save_model(model_dir, build_trained(seed=1), hmac_key=KEY)
        monkeypatch.undo()
        assert current_version(model_dir, CT) == old
        assert load_model(model_dir, CT, hmac_key=KEY).manifest["version"] == old
        assert version_dirs(model_dir) == [f"{CT}-{old}"]

    def test_two_concurrent_saves_leave_a_loadable_model(self, model_dir):
        models = [build_trained(seed) for seed in range(4)]
        errors: list[BaseException] = []

        def save(trained):
            try:
                save_model(model_dir, trained, hmac_key=KEY, keep_versions=1)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(m,)) for m in models]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert load_model(model_dir, CT, hmac_key=KEY).manifest["version"] == current_version(model_dir, CT)
        assert len(version_dirs(model_dir)) == 1


class TestIntegrity:
    @pytest.fixture
    def saved(self, trained, model_dir):
        save_model(model_dir, trained, hmac_key=KEY)
        return model_dir

    @pytest.mark.parametrize("part", ["model", "user_map", "item_map", "matrix", "items"])
    def test_a_truncated_file_is_refused_by_name(self, saved, part):
        path = file_of(saved, part)
        path.write_bytes(path.read_bytes()[:-7])
        with pytest.raises(ModelIntegrityError, match=f"{CT}_{part}.pkl.*truncated"):
            load_model(saved, CT, hmac_key=KEY)

    def test_a_tampered_file_of_the_same_size_is_refused_by_name(self, saved):
        path = file_of(saved, "matrix")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(ModelIntegrityError, match=f"{CT}_matrix.pkl: HMAC mismatch"):
            load_model(saved, CT, hmac_key=KEY)

    def test_a_missing_file_is_refused_by_name(self, saved):
        file_of(saved, "items").unlink()
        with pytest.raises(ModelIntegrityError, match=f"{CT}_items.pkl: missing"):
            load_model(saved, CT, hmac_key=KEY)

    def test_a_malicious_pickle_is_never_unpickled(self, saved, tmp_path):
        marker = tmp_path / "pwned"

        class Exploit:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        path = file_of(saved, "items")
        payload = pickle.dumps(Exploit())
        path.write_bytes(payload + b"\0" * max(0, path.stat().st_size - len(payload)))
        with pytest.raises(ModelIntegrityError, match=f"{CT}_items.pkl"):
            load_model(saved, CT, hmac_key=KEY)
        assert not marker.exists()

    def test_a_wrong_key_is_refused(self, saved):
        with pytest.raises(ModelIntegrityError, match="MUSICBUD_MODEL_HMAC_KEY"):
            load_model(saved, CT, hmac_key=b"another key")

    def test_an_edited_manifest_is_refused(self, saved):
        path = saved / f"{CT}_manifest.json"
        manifest = json.loads(path.read_text())
        manifest["metrics"]["precision_at_k"] = 0.99
        path.write_text(json.dumps(manifest))
        with pytest.raises(ModelIntegrityError, match=f"{CT}_manifest.json: signature does not match"):
            load_model(saved, CT, hmac_key=KEY)

    def test_a_file_from_another_version_is_refused(self, trained, saved):
        first = file_of(saved, "matrix").read_bytes()
        save_model(saved, build_trained(seed=2), hmac_key=KEY)
        path = file_of(saved, "matrix")
        assert path.read_bytes() != first
        path.write_bytes(first)  # a validly signed file, but of the previous version
        with pytest.raises(ModelIntegrityError, match=f"{CT}_matrix.pkl"):
            load_model(saved, CT, hmac_key=KEY)

    def test_a_garbled_manifest_is_an_integrity_error(self, saved):
        (saved / f"{CT}_manifest.json").write_text("{not json")
        with pytest.raises(ModelIntegrityError, match="not valid JSON"):
            current_version(saved, CT)

    def test_an_empty_key_is_refused(self, trained, model_dir):
        with pytest.raises(ValueError, match="MUSICBUD_MODEL_HMAC_KEY"):
            save_model(model_dir, trained, hmac_key=b"")


def test_the_model_dir_mode_survives_a_permissive_umask(trained, tmp_path):
    old_umask = os.umask(0o022)
    try:
        save_model(tmp_path / "a" / "b", trained, hmac_key=KEY)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


class TestDelete:
    def test_it_removes_every_version_and_the_manifest_and_leaves_other_models(self, trained, model_dir):
        save_model(model_dir, trained, hmac_key=KEY, keep_versions=2)
        save_model(model_dir, trained, hmac_key=KEY, keep_versions=2)
        other = build_trained(seed=1)
        other.content_type = "movie_x0badf00_1"  # a key that starts like CT's
        save_model(model_dir, other, hmac_key=KEY)
        assert model_keys(model_dir) == {CT, "movie_x0badf00_1"}
        assert delete_model(model_dir, CT) is True
        assert model_keys(model_dir) == {"movie_x0badf00_1"}
        assert not [p.name for p in model_dir.iterdir() if p.name.startswith((CT + "-", f".{CT}-", f".{CT}."))]
        with pytest.raises(ModelNotFoundError):
            load_model(model_dir, CT, hmac_key=KEY)
        assert load_model(model_dir, "movie_x0badf00_1", hmac_key=KEY).recommend("u0", n=3)
        assert delete_model(model_dir, CT) is False  # nothing left: idempotent

    def test_a_reader_that_read_the_manifest_before_the_delete_loads_nothing_rather_than_half(
            self, trained, model_dir, monkeypatch):
        save_model(model_dir, trained, hmac_key=KEY)
        read = model_store._verified_files

        def delete_meanwhile(directory, ct, manifest, key):  # the manifest is read: now the model goes
            delete_model(model_dir, CT)
            return read(directory, ct, manifest, key)

        monkeypatch.setattr(model_store, "_verified_files", delete_meanwhile)
        with pytest.raises(ModelNotFoundError):
            load_model(model_dir, CT, hmac_key=KEY)

    def test_there_are_no_keys_in_a_missing_directory(self, model_dir):
        assert model_keys(model_dir) == set() and delete_model(model_dir, CT) is False
