"""The database, the catalogue on top of it and manager accounts, on real SQLite files and PostgreSQL."""

import json
import multiprocessing
import os
import sqlite3

import pytest

from postgres_server import DATABASE_URL_VARIABLE, PostgresServer, fresh_database, unavailable_reason
from workers.accounts import AccountError, authenticate, register_museum
from workers.catalogue import Catalogue, Painting, new_painting_id
from workers.database import MIGRATIONS, DatabaseError, NotFound, NotOwner, open_database

SQL_TITLE = "Robert'); DROP TABLE painting;--"
HTML_TITLE = '<script>alert("x")</script> & <b>bold</b>'


@pytest.fixture(scope="module")
def postgres_url():
    """The server in PAIN_TEST_DATABASE_URL (as .ci/run sets it), else a throwaway server of this module."""
    url = os.environ.get(DATABASE_URL_VARIABLE)
    if url:
        yield url
        return
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"{reason}; or set {DATABASE_URL_VARIABLE}")
    with PostgresServer() as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database of each kind: '' means the SQLite file in the data directory."""
    if request.param == "sqlite":
        yield ""
        return
    # Each test gets its own database, so tests never see each other's rows.
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def painting(museum="museum-a", title="Title", image=None) -> Painting:
    return Painting(
        id=new_painting_id(),
        museum=museum,
        title=title,
        artist="Artist",
        year="1600",
        medium="oil on canvas",
        description="A description",
        image=image or f"{new_painting_id()}.jpg",
    )


def test_fresh_database_gets_every_migration(tmp_path, database_url):
    database = open_database(tmp_path, database_url)
    assert database.schema_version() == MIGRATIONS[-1][0]
    again = open_database(tmp_path, database_url)
    assert again.migrate() == []
    assert again.schema_version() == MIGRATIONS[-1][0]


def test_sqlite_file_uses_wal_in_the_data_directory(tmp_path):
    Catalogue(tmp_path).add(painting())
    connection = sqlite3.connect(tmp_path / "pain.sqlite3")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("SELECT COUNT(*) FROM painting").fetchone()[0] == 1


def test_legacy_catalogue_json_is_imported_once(tmp_path, database_url):
    rows = [
        {"id": "a" * 32, "museum": "estensi", "title": "First", "artist": "A", "year": "1500",
         "medium": "oil", "description": "d", "image": "b" * 32 + ".png"},
        {"id": "c" * 32, "museum": "estensi", "title": "Second", "artist": "B", "year": "1501",
         "medium": "tempera", "description": "e", "image": "d" * 32 + ".png"},
    ]
    (tmp_path / "catalogue.json").write_text(json.dumps(rows), encoding="utf-8")

    catalogue = Catalogue(tmp_path, database_url)
    assert sorted(p.title for p in catalogue.by_museum("estensi")) == ["First", "Second"]
    assert catalogue.get("a" * 32).image == "b" * 32 + ".png"
    assert not (tmp_path / "catalogue.json").exists()
    assert (tmp_path / "catalogue.json.imported").is_file()

    # A stray copy of the file put back later is not imported a second time.
    (tmp_path / "catalogue.json").write_text(json.dumps(rows), encoding="utf-8")
    assert len(Catalogue(tmp_path, database_url)) == 2


def test_change_stamp_moves_on_every_write(tmp_path, database_url):
    writer = Catalogue(tmp_path, database_url)
    reader = Catalogue(tmp_path, database_url)  # as a predictor process has its own
    stamps = [reader.change_stamp()]

    first = painting()
    writer.add(first)
    stamps.append(reader.change_stamp())
    writer.update(first.id, "museum-a", {"title": "Renamed"})
    stamps.append(reader.change_stamp())
    writer.delete(first.id, "museum-a")
    stamps.append(reader.change_stamp())
    assert stamps == sorted(set(stamps)), stamps

    assert reader.refresh() is True
    assert reader.get(first.id) is None
    assert reader.refresh() is False


def test_reader_sees_updates_after_refresh(tmp_path, database_url):
    writer = Catalogue(tmp_path, database_url)
    reader = Catalogue(tmp_path, database_url)
    stored = painting()
    writer.add(stored)
    reader.refresh()
    assert reader.get(stored.id).title == "Title"
    assert reader.has_museum("museum-a")
    assert reader.museums() == {"museum-a": 1}

    writer.update(stored.id, "museum-a", {"title": "New title", "description": "New text"})
    reader.refresh()
    assert reader.get(stored.id).title == "New title"
    assert reader.get(stored.id).description == "New text"
    assert reader.get(stored.id).updated_at >= reader.get(stored.id).created_at


def test_sql_and_html_are_stored_as_text(tmp_path, database_url):
    catalogue = Catalogue(tmp_path, database_url)
    stored = painting(title=SQL_TITLE)
    catalogue.add(stored)
    catalogue.update(stored.id, "museum-a", {"description": HTML_TITLE})
    again = Catalogue(tmp_path, database_url)
    assert again.get(stored.id).title == SQL_TITLE
    assert again.get(stored.id).description == HTML_TITLE
    assert len(again) == 1


def test_other_museum_cannot_change_or_delete(tmp_path, database_url):
    catalogue = Catalogue(tmp_path, database_url)
    stored = painting(museum="museum-a")
    catalogue.add(stored)

    with pytest.raises(NotOwner):
        catalogue.update(stored.id, "museum-b", {"title": "Stolen"})
    with pytest.raises(NotOwner):
        catalogue.delete(stored.id, "museum-b")
    with pytest.raises(NotOwner):
        catalogue.replace_image(stored.id, "museum-b", f"{new_painting_id()}.jpg", {})
    with pytest.raises(NotFound):
        catalogue.update("no-such-painting", "museum-a", {"title": "x"})
    assert catalogue.get(stored.id).title == "Title"


def test_unknown_field_is_rejected(tmp_path):
    catalogue = Catalogue(tmp_path)
    stored = painting()
    catalogue.add(stored)
    with pytest.raises(ValueError, match="museum"):
        catalogue.update(stored.id, "museum-a", {"museum": "museum-b"})


def test_replacing_the_image_changes_the_id(tmp_path, database_url):
    catalogue = Catalogue(tmp_path, database_url)
    old_image = catalogue.store_image(b"old bytes", "old.jpg")
    stored = painting(image=old_image)
    catalogue.add(stored)
    new_image = catalogue.store_image(b"new bytes", "new.jpg")

    replaced = catalogue.replace_image(stored.id, "museum-a", new_image, {"title": "Replaced"})
    assert replaced.id != stored.id
    assert replaced.image == new_image
    assert replaced.title == "Replaced"
    assert replaced.artist == "Artist"
    assert replaced.created_at == catalogue.get(replaced.id).created_at
    assert catalogue.get(stored.id) is None
    assert catalogue.image_path(old_image) is None
    assert catalogue.image_path(new_image).read_bytes() == b"new bytes"


def test_delete_removes_the_image_file(tmp_path):
    catalogue = Catalogue(tmp_path)
    image = catalogue.store_image(b"bytes", "x.png")
    stored = painting(image=image)
    catalogue.add(stored)
    deleted = catalogue.delete(stored.id, "museum-a")
    assert deleted.id == stored.id
    assert catalogue.image_path(image) is None
    assert len(Catalogue(tmp_path)) == 0


@pytest.mark.parametrize("client_name", ["../../etc/passwd.png", "..\\..\\boot.ini", "photo.exe", "", "a/b/c.JPG"])
def test_stored_image_names_are_generated(tmp_path, client_name):
    catalogue = Catalogue(tmp_path)
    name = catalogue.store_image(b"bytes", client_name)
    assert "/" not in name
    assert ".." not in name
    assert "\\" not in name
    assert catalogue.image_path(name) == tmp_path / "images" / name
    assert [p.name for p in (tmp_path / "images").iterdir()] == [name]


@pytest.mark.parametrize("name", ["../pain.sqlite3", "..%2Fpain.sqlite3", "/etc/passwd", "x.png", "a" * 32 + ".png/.."])
def test_image_path_rejects_names_it_did_not_generate(tmp_path, name):
    assert Catalogue(tmp_path).image_path(name) is None


def test_runs_and_versions(tmp_path, database_url):
    database = open_database(tmp_path, database_url)
    database.record_run("run-1", total=4)
    database.update_run("run-1", done=2, epochs=[{"epoch": 1, "train_loss": 0.9, "val_loss": 1.1}])
    database.update_run("run-1", state="succeeded", version="v0002", done=4)
    database.record_version("v0002", "training", paintings=4, run_id="run-1")
    database.record_version("v0001", "import", paintings=3)

    [run] = database.list_runs()
    assert run["state"] == "succeeded"
    assert run["done"] == 4
    assert run["total"] == 4
    assert run["epochs"] == [{"epoch": 1, "train_loss": 0.9, "val_loss": 1.1}]
    assert [v["version"] for v in database.list_versions()] == ["v0001", "v0002"]
    assert database.list_versions()[1]["run_id"] == "run-1"

    with pytest.raises(NotFound):
        database.update_run("no-such-run", state="failed")

    # One run by id, and the ids of runs still recorded as running.
    database.record_run("run-2", total=3)
    assert database.get_run("run-1")["version"] == "v0002"
    assert database.get_run("no-such-run") is None
    assert database.running_run_ids() == ["run-2"]
    with pytest.raises(ValueError, match="colour"):
        database.update_run("run-1", colour="red")


def test_accounts_hash_passwords_with_argon2id(tmp_path, database_url):
    database = open_database(tmp_path, database_url)
    museum = register_museum(database, "estensi", "Galleria Estense", "correct horse battery")
    assert museum.password_hash.startswith("$argon2id$")
    assert "correct horse" not in museum.password_hash

    assert authenticate(database, "estensi", "correct horse battery").id == "estensi"
    assert authenticate(database, "estensi", "wrong password!") is None
    assert authenticate(database, "nobody", "correct horse battery") is None
    assert authenticate(database, "../etc", "correct horse battery") is None


@pytest.mark.parametrize(
    "museum_id, name, password, field",
    [
        ("bad id", "Name", "long enough password", "museum_id"),
        ("", "Name", "long enough password", "museum_id"),
        ("m" * 65, "Name", "long enough password", "museum_id"),
        ("ok", "   ", "long enough password", "name"),
        ("ok", "Name", "short", "password"),
        ("ok", "Name", "x" * 1025, "password"),
    ],
)
def test_registration_rejects_invalid_input(tmp_path, museum_id, name, password, field):
    database = open_database(tmp_path)
    with pytest.raises(AccountError) as raised:
        register_museum(database, museum_id, name, password)
    assert raised.value.field == field
    assert database.get_museum(museum_id) is None


def test_registration_rejects_a_taken_id(tmp_path):
    catalogue = Catalogue(tmp_path)
    catalogue.add(painting(museum="imported"))  # `pain import` creates museums without a password
    with pytest.raises(AccountError, match="already registered"):
        register_museum(catalogue.database, "imported", "Someone else", "long enough password")
    assert authenticate(catalogue.database, "imported", "long enough password") is None


def _open_in_process(data_dir: str, queue) -> None:
    from pathlib import Path

    catalogue = Catalogue(Path(data_dir))
    queue.put(catalogue.database.schema_version())


def test_processes_migrating_at_once_agree(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_open_in_process, args=(str(tmp_path), queue)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert sorted(queue.get(timeout=5) for _ in processes) == [MIGRATIONS[-1][0]] * 3
    applied = sqlite3.connect(tmp_path / "pain.sqlite3").execute("SELECT version FROM schema_migration").fetchall()
    assert sorted(v for (v,) in applied) == [v for v, _, _ in MIGRATIONS]


def test_unsupported_database_url_names_the_key(tmp_path):
    with pytest.raises(DatabaseError, match="storage.database_url"):
        open_database(tmp_path, "mysql://user@localhost/pain")


def test_unreachable_postgres_names_the_key(tmp_path):
    from live_server import free_port

    with pytest.raises(DatabaseError, match="storage.database_url"):
        open_database(tmp_path, f"postgresql://nobody@127.0.0.1:{free_port()}/pain")
