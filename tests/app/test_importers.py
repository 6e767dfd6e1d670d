"""The import commands (app/importers, import_movielens / import_mal / import_manga) on small CSVs written
here, and ml-latest-small from ../shared/data when it is there."""
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from app import graph
from app.importers.mal import genres_from_words
from app.importers.movielens import movie_title_split
from tests.app.test_graph_writes import snapshot

pytestmark = pytest.mark.neo4j

ROOT = Path(__file__).resolve().parents[2]

RATINGS = """userId,movieId,rating,timestamp
1,1,4.0,964982703
1,3,3.5,964981247
2,1,5.0,964982224
2,2,0.5,964983815
2,3,4.5,964982931
"""
MOVIES = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
2,"American President, The (1995)",Comedy|Drama|Romance
3,Babylon 5,(no genres listed)
4,Heat (1995) ,Action|Crime|Thriller
"""
LINKS = """movieId,imdbId,tmdbId
1,0114709,862
2,0112346,9087
3,0105946,
4,0113277,949
"""


def write(directory: Path, name: str, text: str, *, newline: str = "\n", encoding: str = "utf-8") -> Path:
    path = directory / name
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, verbosity=0)
    return out.getvalue()


@pytest.fixture
def movielens(tmp_path) -> dict[str, Path]:
    return {"ratings": write(tmp_path, "ratings.csv", RATINGS), "movies": write(tmp_path, "movies.csv", MOVIES),
            "links": write(tmp_path, "links.csv", LINKS)}


def ml_args(files: dict[str, Path]) -> list[str]:
    return ["--ratings", str(files["ratings"]), "--movies", str(files["movies"]), "--links", str(files["links"])]


def edges_of(rel_types: str) -> list[tuple]:
    rows = graph.query(
        f"MATCH (p:ParentUser)-[:CONNECTED_TO_IMDB|CONNECTED_TO_MAL]->(a)-[r:{rel_types}]->(i) "
        "RETURN p.uid AS user, type(r) AS rel, toString(coalesce(i.imdb_id, i.anime_id)) AS item, "
        "r.score AS score, r.created_at.epochSeconds AS at ORDER BY user, item")
    return [(r["user"], r["rel"], r["item"], r["score"], r["at"]) for r in rows]


# ------------------------------------------------------------------------------------------------ MovieLens
def test_movie_titles_lose_their_year_and_get_their_article_back():
    assert movie_title_split("Toy Story (1995)") == ("Toy Story", 1995)
    assert movie_title_split("American President, The (1995)") == ("The American President", 1995)
    assert movie_title_split("Heat (1995) ") == ("Heat", 1995)
    assert movie_title_split("Babylon 5") == ("Babylon 5", None)
    assert movie_title_split("City of Lost Children, The (Cité des enfants perdus, La) (1995)") == (
        "The City of Lost Children (Cité des enfants perdus, La)", 1995)


def test_movielens_makes_one_edge_per_rated_pair_liked_from_4(clean_graph, movielens):
    out = run("import_movielens", *ml_args(movielens))

    assert "4 movies items, 2 users, 5 edges (LIKES 3, WATCHED 2)" in out
    assert edges_of("LIKES|WATCHED") == [
        ("ml-1", "WATCHED", "tt0105946", None, 964981247),
        ("ml-1", "LIKES", "tt0114709", None, 964982703),
        ("ml-2", "LIKES", "tt0105946", None, 964982931),
        ("ml-2", "WATCHED", "tt0112346", None, 964983815),
        ("ml-2", "LIKES", "tt0114709", None, 964982224),
    ]
    movies = graph.query("MATCH (m:ImdbMovie) RETURN m {.*} AS m ORDER BY m.imdb_id")
    assert [m["m"] for m in movies] == [
        {"imdb_id": "tt0105946", "title": "Babylon 5", "genres": []},
        {"imdb_id": "tt0112346", "title": "The American President", "year": 1995,
         "genres": ["Comedy", "Drama", "Romance"]},
        {"imdb_id": "tt0113277", "title": "Heat", "year": 1995, "genres": ["Action", "Crime", "Thriller"]},
        {"imdb_id": "tt0114709", "title": "Toy Story", "year": 1995,
         "genres": ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]},
    ]
    users = graph.query("MATCH (p:ParentUser)-[c:CONNECTED_TO_IMDB]->(a:ImdbUser) "
                        "RETURN p.uid AS uid, p.username AS name, a.user_id AS account, c.created_at.epochSeconds AS at "
                        "ORDER BY uid")
    assert users == [{"uid": "ml-1", "name": "ml_1", "account": "imdb:ml-1", "at": 964981247},
                     {"uid": "ml-2", "name": "ml_2", "account": "imdb:ml-2", "at": 964982224}]


def test_movielens_100k_keys_its_items_ml100k_and_reads_the_genre_flags(clean_graph, tmp_path):
    flags = ["0"] * 19
    toy, crime = list(flags), list(flags)
    toy[3] = toy[4] = toy[5] = "1"  # Animation, Children's, Comedy
    crime[0] = "1"  # unknown: no genre
    items = (f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story|{'|'.join(toy)}\n"
             f"2|Pt\xe9 \"Quoted\" (1996)|05-Feb-1996||x|{'|'.join(crime)}\n"
             f"3|unknown||||{'|'.join(crime)}\n")
    write(tmp_path, "u.item", items, encoding="latin-1")
    write(tmp_path, "u.data", "196\t1\t3\t881250949\n196\t2\t4\t881250950\n22\t1\t5\t878887116\n")

    out = run("import_movielens", "--ml100k", str(tmp_path))

    assert "3 movies items, 2 users, 3 edges (LIKES 2, WATCHED 1)" in out
    movies = {m["m"]["imdb_id"]: m["m"] for m in graph.query("MATCH (m:ImdbMovie) RETURN m {.*} AS m")}
    assert movies["ml100k-1"] == {"imdb_id": "ml100k-1", "title": "Toy Story", "year": 1995,
                                  "genres": ["Animation", "Children's", "Comedy"]}
    assert movies["ml100k-2"]["title"] == 'Pt\xe9 "Quoted"' and movies["ml100k-2"]["genres"] == []
    assert movies["ml100k-3"] == {"imdb_id": "ml100k-3", "title": "unknown", "genres": []}
    assert [e[:3] for e in edges_of("LIKES|WATCHED")] == [
        ("ml100k-196", "WATCHED", "ml100k-1"), ("ml100k-196", "LIKES", "ml100k-2"), ("ml100k-22", "LIKES", "ml100k-1")]


def test_importing_movielens_twice_changes_nothing(clean_graph, movielens):
    run("import_movielens", *ml_args(movielens))
    first = snapshot()
    run("import_movielens", *ml_args(movielens))
    assert snapshot() == first


@pytest.mark.parametrize("file, bad_line, line, message", [
    ("ratings", "2,1,abc,964982224", 4, "ratings.csv line 4: rating 'abc' is not a number"),
    ("ratings", "2,1,5.5,964982224", 4, "ratings.csv line 4: rating 5.5 is out of range 0.5..5"),
    ("ratings", "2,1,4.0", 4, "ratings.csv line 4: expected 4 fields (userId,movieId,rating,timestamp), found 3"),
    ("ratings", "x2,1,4.0,964982224", 4, "ratings.csv line 4: userId 'x2' is not an integer"),
    ("ratings", "2,99,4.0,964982224", 4, "ratings.csv line 4: movieId 99 is not in links.csv"),
    ("movies", "5,Sabrina (1995),Comedy", 6, "movies.csv line 6: movieId 5 has no link in links.csv"),
    ("links", "5,tt0114319,11860", 6, "links.csv line 6: imdbId 'tt0114319' is not an integer"),
])
def test_a_malformed_line_is_refused_with_its_file_and_line_and_nothing_is_written(
        clean_graph, tmp_path, movielens, file, bad_line, line, message):
    run("import_movielens", *ml_args(movielens))
    before = snapshot()
    path = movielens[file]
    lines = path.read_text().splitlines()
    lines.insert(line - 1, bad_line)
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(CommandError) as refused:
        run("import_movielens", *ml_args(movielens))
    assert str(refused.value).startswith(message)
    assert snapshot() == before


def test_the_command_exits_1_with_one_line_and_no_traceback(tmp_path, movielens):
    write(tmp_path, "ratings.csv", RATINGS + "3,1,abc,964982224\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "manage.py", "import_movielens", *ml_args(movielens)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "ratings.csv line 7: rating 'abc' is not a number" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------------ anime
ANIME_CSV = """anime_id,name,genre,type,episodes,rating,members
9969,Gintama&#039;,"Action, Comedy, Sci-Fi",TV,51,9.16,151266
5114,Fullmetal Alchemist: Brotherhood,"Action, Adventure",TV,64,9.26,793665
777,Some OVA,,,Unknown,,10
"""
JIKAN_CSV = """item_id,title,genres,description,image_url
5114,FMA Brotherhood,Action|Award Winning,"Two brothers.
They search.",https://cdn.example/fma.jpg
16498,Shingeki no Kyojin,Action|Drama,Titans.,https://cdn.example/snk.jpg
"""
ANIME_RATINGS = """user_id,anime_id,rating
1,9969,10
1,5114,-1
2,16498,7
2,424242,8
2,9969,3
2,9969,4
"""


@pytest.fixture
def anime_files(tmp_path) -> list[str]:
    return ["--anime", str(write(tmp_path, "anime.csv", ANIME_CSV, newline="\r\n")),
            "--anime", str(write(tmp_path, "anime_popular_jikan.csv", JIKAN_CSV)),
            "--ratings", str(write(tmp_path, "rating.csv", ANIME_RATINGS))]


def test_mal_ratings_become_top_anime_edges_scored_1_to_10_and_unscored_for_minus_1(clean_graph, anime_files):
    out = run("import_mal", *anime_files)

    assert "4 anime items, 2 users, 4 edges (TOP_ANIME 4)" in out
    assert "skipped 1 of 5 rated (user, anime) pairs" in out
    edges = [(user, item, score) for user, _, item, score, at in edges_of("TOP_ANIME")]
    assert edges == [("mal-1", "5114", None), ("mal-1", "9969", 10.0), ("mal-2", "16498", 7.0),
                     ("mal-2", "9969", 4.0)]  # a pair rated twice keeps its last row
    assert graph.query("MATCH (p:ParentUser {uid: 'mal-2'})-[:CONNECTED_TO_MAL]->(a:MalUser) "
                       "RETURN p.username AS name, a.user_id AS account") == [{"name": "mal_2", "account": 2}]


def test_anime_catalogues_merge_in_order_and_unescape_html(clean_graph, anime_files):
    run("import_mal", *anime_files[:4])

    anime = {a["a"]["anime_id"]: a["a"] for a in graph.query("MATCH (a:Anime) RETURN a {.*} AS a")}
    assert anime[9969] == {"anime_id": 9969, "title": "Gintama'", "genres": ["Action", "Comedy", "Sci-Fi"],
                           "type": "TV", "episodes": 51, "score": 9.16}
    assert anime[5114] == {"anime_id": 5114, "title": "Fullmetal Alchemist: Brotherhood",
                           "genres": ["Action", "Adventure"], "type": "TV", "episodes": 64, "score": 9.26,
                           "image_url": "https://cdn.example/fma.jpg"}
    assert anime[777] == {"anime_id": 777, "title": "Some OVA"}  # "Unknown" episodes, empty rating: absent
    assert anime[16498]["title"] == "Shingeki no Kyojin"


def test_importing_mal_twice_changes_nothing(clean_graph, anime_files):
    run("import_mal", *anime_files)
    first = snapshot()
    run("import_mal", *anime_files)
    assert snapshot() == first


@pytest.mark.parametrize("bad_line, message", [
    ("3,9969,0", "rating.csv line 8: rating 0 is neither -1 (watched, unrated) nor an integer 1..10"),
    ("3,9969,11", "rating.csv line 8: rating 11 is out of range -1..10"),
    ("3,abc,7", "rating.csv line 8: anime_id 'abc' is not an integer"),
])
def test_a_malformed_rating_is_refused_and_nothing_is_written(clean_graph, tmp_path, anime_files, bad_line, message):
    write(tmp_path, "rating.csv", ANIME_RATINGS + bad_line + "\n")
    with pytest.raises(CommandError) as refused:
        run("import_mal", *anime_files)
    assert str(refused.value).startswith(message)
    assert snapshot() == ([], [])


# ------------------------------------------------------------------------------------------------ manga
MANGA_POPULAR = """item_id,title,genres,description,image_url
2,Berserk,Action|Award Winning|Dark Fantasy,"Guts, a former mercenary.",https://cdn.example/2.jpg
13,One Piece,Action|Adventure,,https://cdn.example/13.jpg
"""
MANGA_BY_ID = """id,title,synopsis,genres,score,image_url
1,Monster,"Kenzou Tenma, a neurosurgeon.

As a consequence, he loses everything.",Award Winning Drama Mystery Slice of Life,9.16,https://cdn.example/1.jpg
2,Berserk (by id),"Another synopsis.",Action Adventure,9.47,
13,One Piece,"Gol D. Roger.",Action Adventure Dark Fantasy,9.22,https://cdn.example/13b.jpg
"""


def test_space_separated_genres_keep_their_multi_word_names():
    assert genres_from_words("Award Winning Drama Slice of Life Boys Love Sci-Fi") == [
        "Award Winning", "Drama", "Slice of Life", "Boys Love", "Sci-Fi"]


def test_manga_files_merge_by_id_and_later_files_only_fill_what_is_missing(clean_graph, tmp_path):
    popular = write(tmp_path, "manga_popular_jikan.csv", MANGA_POPULAR)
    by_id = write(tmp_path, "manga_jikan_by_id.csv", MANGA_BY_ID)

    out = run("import_manga", "--file", str(popular), "--file", str(by_id))

    assert "3 manga items" in out
    manga = {m["m"]["manga_id"]: m["m"] for m in graph.query("MATCH (m:Manga) RETURN m {.*} AS m")}
    assert manga[2] == {"manga_id": 2, "title": "Berserk", "genres": ["Action", "Award Winning", "Dark Fantasy"],
                        "synopsis": "Guts, a former mercenary.", "image_url": "https://cdn.example/2.jpg",
                        "score": 9.47}
    assert manga[13]["synopsis"] == "Gol D. Roger." and manga[13]["image_url"] == "https://cdn.example/13.jpg"
    assert manga[13]["genres"] == ["Action", "Adventure"]
    assert manga[1]["synopsis"] == "Kenzou Tenma, a neurosurgeon.\n\nAs a consequence, he loses everything."
    assert manga[1]["genres"] == ["Award Winning", "Drama", "Mystery", "Slice of Life"]

    before = snapshot()  # a later import of the other file alone keeps what is there
    run("import_manga", "--file", str(by_id))
    assert snapshot() == before


def test_a_bad_manga_line_after_a_multi_line_synopsis_names_its_physical_line(clean_graph, tmp_path):
    by_id = write(tmp_path, "manga_jikan_by_id.csv", MANGA_BY_ID + "14,Bad,x,Action,ten,\n")
    with pytest.raises(CommandError, match=r"^manga_jikan_by_id.csv line 7: score 'ten' is not a number"):
        run("import_manga", "--file", str(by_id))
    with pytest.raises(CommandError, match=r"^unknown.csv line 1: unknown columns 'a,b'"):
        run("import_manga", "--file", str(write(tmp_path, "unknown.csv", "a,b\n1,2\n")))
    assert snapshot() == ([], [])


# ------------------------------------------------------------------------------------------------ shared data
@pytest.mark.slow
def test_ml_latest_small_imports_to_its_100836_pairs_610_users_and_9742_movies(clean_graph, shared_data):
    ml = shared_data / "movielens-latest-small"
    out = run("import_movielens", "--ratings", str(ml / "ratings.csv"), "--movies", str(ml / "movies.csv"),
              "--links", str(ml / "links.csv"))

    assert "9,742 movies items, 610 users, 100,836 edges" in out
    counts = graph.query(
        "MATCH (m:ImdbMovie) WHERE m.imdb_id STARTS WITH 'tt' WITH count(m) AS movies "
        "MATCH (p:ParentUser)-[:CONNECTED_TO_IMDB]->(:ImdbUser) WITH movies, count(p) AS users "
        "MATCH (:ImdbUser)-[r:LIKES|WATCHED]->(:ImdbMovie) "
        "RETURN movies, users, count(r) AS edges, count(DISTINCT [startNode(r), endNode(r)]) AS pairs")
    assert counts == [{"movies": 9742, "users": 610, "edges": 100836, "pairs": 100836}]
