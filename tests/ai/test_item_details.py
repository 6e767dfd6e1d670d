"""ai/item_details.py: item details held compactly read as the dicts they were made from."""
import pickle

from ai.item_details import ItemDetails


def test_item_details_read_as_the_dicts_they_were_made_from_and_one_field_reads_alone():
    source = {"tt1": {"id": "tt1", "title": "Heat", "year": 1995, "genres": ["Crime", "Drama"]},
              "tt2": {"id": "tt2", "title": "Up"},  # other fields: kept as they are
              "tt3": {"id": "tt3", "title": "Heat", "year": None, "genres": []}}
    items = ItemDetails(source)
    assert dict(items) == source and items == source and len(items) == 3
    assert items["tt1"] == source["tt1"] and items.get("tt9") is None and "tt2" in items
    assert items.value("tt1", "title") == "Heat" and items.value("tt2", "year", "?") == "?"
    assert items.value("tt9", "title") is None
    assert items["tt1"]["title"] is items["tt3"]["title"]  # one string object for one title
    items["tt1"]["title"] = "changed"  # a read is a copy: the details stay as they were
    assert items.value("tt1", "title") == "Heat"
    assert pickle.loads(pickle.dumps(items)) == source
