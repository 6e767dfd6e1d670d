"""One uid index per process: a CompactUserMap answers as the dict it was built from, models share the index."""
from __future__ import annotations

import copy
import pickle
import threading
from dataclasses import replace

import joblib
import pytest

from ai.model_store import current_version, load_model, save_model
from ai.user_index import USERS, CompactUserMap, UserIndex
from tests.ai.test_model_store import CT, KEY, build_trained

# rows out of key order, a row above 256 (an int object of its own in a dict), a uid of another map
DICT = {"carol": 2, "alice": 0, "bob": 1, "dave": 300, "erin": 3}
MISSING = ["zoe", "", "ALICE", "alice ", "u-1"]


@pytest.fixture
def index() -> UserIndex:
    return UserIndex()


@pytest.fixture
def compact(index) -> CompactUserMap:
    CompactUserMap({"zoe": 7, "yann": 8}, index=index)  # the index already numbers uids this map does not have
    return CompactUserMap(DICT, index=index)


class TestItAnswersAsTheDict:
    def test_get_and_getitem_give_the_dicts_rows_as_python_ints(self, compact):
        for uid, row in DICT.items():
            assert compact.get(uid) == compact[uid] == row and type(compact[uid]) is int

    def test_a_missing_uid_is_missing_never_row_minus_one(self, compact):
        for uid in MISSING:
            assert compact.get(uid) is None and compact.get(uid, "x") == "x" and uid not in compact
            with pytest.raises(KeyError):
                compact[uid]
        assert -1 not in compact.values()

    def test_a_uid_numbered_after_the_map_was_built_is_missing(self, index, compact):
        CompactUserMap({f"late{i}": i for i in range(1000)}, index=index)
        assert "late999" not in compact and compact.get("late999") is None and compact.get("late0") is None

    def test_len_iteration_keys_values_and_items_follow_the_dict(self, compact):
        assert len(compact) == len(DICT)
        assert list(compact) == list(DICT) == list(compact.keys())  # the dict's order, not the rows'
        assert list(compact.values()) == list(DICT.values())
        assert list(compact.items()) == list(DICT.items())
        assert ("alice", 0) in compact.items() and ("alice", 1) not in compact.items()
        assert dict(compact) == DICT and compact == DICT and DICT == compact

    def test_it_is_unequal_to_a_dict_that_differs_in_one_row_or_one_uid(self, compact):
        assert compact != {**DICT, "alice": 5}
        assert compact != {**DICT, "zoe": 7}
        assert compact != {k: v for k, v in DICT.items() if k != "dave"}

    def test_two_compact_maps_compare_by_their_entries(self, index, compact):
        assert compact == CompactUserMap(dict(reversed(DICT.items())), index=index)
        assert compact != CompactUserMap({**DICT, "alice": 5}, index=index)
        assert compact != CompactUserMap({**DICT, "zoe": 7}, index=index)
        assert CompactUserMap({**DICT, "zoe": 7}, index=index) != compact
        assert compact == CompactUserMap(DICT, index=UserIndex())  # another index: compared entry by entry

    def test_an_empty_map_has_nothing(self, index):
        empty = CompactUserMap({}, index=index)
        assert len(empty) == 0 and list(empty) == [] and empty.get("alice") is None and empty == {}

    def test_it_refuses_rows_an_int32_cannot_hold(self, index):
        with pytest.raises(ValueError, match="rows must be"):
            CompactUserMap({"a": -1}, index=index)
        with pytest.raises(ValueError, match="rows must be"):
            CompactUserMap({"a": 2**31}, index=index)

    def test_it_cannot_be_changed(self, compact):
        with pytest.raises(TypeError):
            compact["alice"] = 9  # type: ignore[index]
        with pytest.raises(ValueError):
            compact._rows[0] = 9


class TestTheIndexIsShared:
    def test_two_maps_of_the_same_uids_share_one_string_and_one_index(self, index):
        a = CompactUserMap({"".join(["us", "er1"]): 0, "user2": 1}, index=index)
        b = CompactUserMap({"".join(["user", "1"]): 5}, index=index)
        assert len(index) == 2 and list(a)[0] is list(b)[0]
        assert a["user1"] == 0 and b["user1"] == 5 and "user2" not in b

    def test_models_hold_compact_maps_over_the_process_index(self):
        first, second = build_trained(), build_trained(seed=1)
        assert isinstance(first.user_map, CompactUserMap) and first.user_map._index is USERS
        assert second.user_map._ids is first.user_map._ids
        assert first.user_map == {f"u{i}": i for i in range(12)}

    def test_a_replaced_model_keeps_the_same_map(self):
        trained = build_trained()
        assert replace(trained, manifest={}).user_map is trained.user_map

    def test_threads_adding_uids_at_once_number_each_uid_once(self, index):
        shared = [f"shared{i}" for i in range(2000)]
        results: dict[int, CompactUserMap] = {}
        start = threading.Barrier(4)

        def build(t: int) -> None:
            start.wait()
            own = [f"t{t}-{i}" for i in range(2000)]
            results[t] = CompactUserMap({uid: i for i, uid in enumerate(shared[::-1] if t % 2 else shared)}
                                        | {uid: 2000 + i for i, uid in enumerate(own)}, index=index)

        threads = [threading.Thread(target=build, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(index) == 2000 + 4 * 2000 == len(set(index._uids)) == len(index._ids)
        assert all(index.uid(gid) == uid for uid, gid in index._ids.items())
        for t, m in results.items():
            assert m["shared0"] == (1999 if t % 2 else 0) and m[f"t{t}-5"] == 2005 and len(m) == 4000


class TestPickling:
    def test_it_pickles_and_copies_as_the_plain_dict_it_stands_for(self, compact):
        for back in (pickle.loads(pickle.dumps(compact)), copy.copy(compact), copy.deepcopy(compact)):
            assert type(back) is dict and back == DICT and list(back) == list(DICT)
        assert b"user_index" not in pickle.dumps(compact)

    def test_a_saved_and_loaded_model_has_the_same_user_map(self, tmp_path):
        trained = build_trained()
        save_model(tmp_path, trained, hmac_key=KEY)
        version = current_version(tmp_path, CT)
        saved = joblib.load(tmp_path / f"{CT}-{version}" / f"{CT}_user_map.pkl")
        assert type(saved) is dict and saved == {f"u{i}": i for i in range(12)}  # the file keeps its format
        loaded = load_model(tmp_path, CT, hmac_key=KEY)
        assert isinstance(loaded.user_map, CompactUserMap) and loaded.user_map == trained.user_map
        assert list(loaded.user_map.items()) == list(trained.user_map.items())
        assert loaded.user_map.get("nobody") is None and loaded.row_size("u0") == trained.row_size("u0") == 3

    def test_a_loaded_model_saved_again_as_a_promotion_does_loads_back(self, tmp_path):
        save_model(tmp_path / "a", build_trained(), hmac_key=KEY)
        loaded = load_model(tmp_path / "a", CT, hmac_key=KEY)
        promoted = replace(loaded, content_type="anime", manifest={"promoted_from": {"model_key": CT}})
        save_model(tmp_path / "b", promoted, hmac_key=KEY)
        again = load_model(tmp_path / "b", "anime", hmac_key=KEY)
        assert again.user_map == loaded.user_map and again.recommend("u0", n=5) == loaded.recommend("u0", n=5)
        whole = pickle.loads(pickle.dumps(again.user_map))  # a whole model pickled elsewhere holds a plain dict
        assert whole == dict(loaded.user_map)

