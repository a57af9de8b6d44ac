"""The PAIN database: museums, paintings, model versions and training runs, through peewee.

`open_database` connects to SQLite (the default: `pain.sqlite3` in the data directory) or to
PostgreSQL (a `postgresql://` URL) and brings the schema up to date before it returns. The server,
every predictor and trainer process and `pain import` each open their own `Database`, so
migrations run under a lock and are safe to start from several processes at once.

Every write to museums or paintings also increments the counter row `collection_state.counter` in
the same transaction. Predictors poll that one integer to notice uploads and deletions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import peewee
import structlog
from playhouse.db_url import connect as connect_url

log = structlog.get_logger(__name__)

SQLITE_FILE = "pain.sqlite3"
LEGACY_CATALOGUE = "catalogue.json"
# Any fixed 64-bit number works: it only has to be the same in every PAIN process.
POSTGRES_MIGRATION_LOCK = 0x7041494E  # "pAIN"
SQLITE_BUSY_TIMEOUT_MS = 10_000
RUN_FIELDS = ("state", "done", "total", "version", "error", "epochs", "finished_at")


class DatabaseError(RuntimeError):
    """An unusable database URL or a failed migration; the message names which."""


class NotFound(LookupError):
    """A painting or museum id that the database does not contain."""


class NotOwner(PermissionError):
    """A museum tried to change a painting of another museum."""


@dataclass(frozen=True)
class PaintingRow:
    """One painting as stored, with its museum id and UTC timestamps."""

    id: str
    museum: str
    title: str
    artist: str
    year: str
    medium: str
    description: str
    image: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class MuseumRow:
    id: str
    name: str
    password_hash: str | None  # None for museums created by `pain import`: nobody can log in
    created_at: dt.datetime


def utc_now() -> dt.datetime:
    """Return the current UTC time without tzinfo, as both SQLite and PostgreSQL columns store it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _build_models(database: peewee.Database) -> SimpleNamespace:
    """Create the model classes bound to one database.

    Each `Database` gets its own classes, so two databases can be open in one process (tests do
    that) without rebinding shared classes under another thread's feet.
    """

    class BaseModel(peewee.Model):
        class Meta:
            legacy_table_names = False

    BaseModel._meta.set_database(database)

    class SchemaMigration(BaseModel):
        version = peewee.IntegerField(primary_key=True)
        name = peewee.CharField(max_length=100)
        applied_at = peewee.DateTimeField(default=utc_now)

    class CollectionState(BaseModel):
        id = peewee.IntegerField(primary_key=True)
        counter = peewee.BigIntegerField(default=0)

    class Museum(BaseModel):
        id = peewee.CharField(max_length=64, primary_key=True)
        name = peewee.CharField(max_length=200)
        password_hash = peewee.CharField(max_length=500, null=True)
        created_at = peewee.DateTimeField(default=utc_now)

    class Painting(BaseModel):
        id = peewee.CharField(max_length=64, primary_key=True)
        museum = peewee.ForeignKeyField(Museum, column_name="museum_id", backref="paintings", on_delete="CASCADE")
        title = peewee.TextField()
        artist = peewee.TextField(default="")
        year = peewee.TextField(default="")
        medium = peewee.TextField(default="")
        description = peewee.TextField(default="")
        image = peewee.CharField(max_length=64)
        created_at = peewee.DateTimeField(default=utc_now, index=True)
        updated_at = peewee.DateTimeField(default=utc_now)

    class TrainingRun(BaseModel):
        run_id = peewee.CharField(max_length=64, primary_key=True)
        state = peewee.CharField(max_length=20, default="running")
        done = peewee.IntegerField(default=0)
        total = peewee.IntegerField(default=0)
        version = peewee.CharField(max_length=20, null=True)
        error = peewee.TextField(null=True)
        epochs = peewee.TextField(default="[]")  # JSON: [{"epoch": 1, "train_loss": .., "val_loss": ..}]
        started_at = peewee.DateTimeField(default=utc_now, index=True)
        finished_at = peewee.DateTimeField(null=True)

    class ModelVersion(BaseModel):
        version = peewee.CharField(max_length=20, primary_key=True)
        source = peewee.CharField(max_length=50)
        paintings = peewee.IntegerField(default=0)
        run = peewee.ForeignKeyField(TrainingRun, column_name="run_id", null=True, on_delete="SET NULL")
        created_at = peewee.DateTimeField(default=utc_now)

    return SimpleNamespace(
        SchemaMigration=SchemaMigration,
        CollectionState=CollectionState,
        Museum=Museum,
        Painting=Painting,
        TrainingRun=TrainingRun,
        ModelVersion=ModelVersion,
        tables=[SchemaMigration, CollectionState, Museum, Painting, TrainingRun, ModelVersion],
    )


def connect_database(data_dir: Path, database_url: str = "") -> peewee.Database:
    """Return an unconnected peewee database for the URL, or for the SQLite file in data_dir."""
    if not database_url:
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{(data_dir / SQLITE_FILE).resolve()}"
    scheme = database_url.partition("://")[0].lower()
    if scheme not in ("sqlite", "postgres", "postgresql"):
        raise DatabaseError(
            f"storage.database_url: scheme {scheme!r} is not supported; use postgresql://user:password@host/dbname,"
            " sqlite:///path, or leave it empty for the SQLite file in the data directory"
        )
    if scheme == "sqlite":
        pragmas = {
            "journal_mode": "wal",  # readers in other processes do not block the writer, and it does not block them
            "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
            "foreign_keys": 1,
            "synchronous": "normal",
        }
        return connect_url(database_url, pragmas=pragmas)
    return connect_url(database_url, unquote_password=True, unquote_user=True)


class Database:
    """One open PAIN database with its model classes and the small APIs the services use."""

    def __init__(self, peewee_database: peewee.Database, data_dir: Path) -> None:
        self.db = peewee_database
        self.data_dir = data_dir
        self.models = _build_models(peewee_database)
        self.is_sqlite = isinstance(peewee_database, peewee.SqliteDatabase)

    def close(self) -> None:
        """Close this thread's connection; the next query opens a new one."""
        if not self.db.is_closed():
            self.db.close()

    def transaction(self):
        """Start a write transaction.

        On SQLite it takes the write lock at once, so two writers wait up to busy_timeout for each
        other instead of failing when one of them upgrades its read lock.
        """
        if self.is_sqlite:
            return self.db.atomic("IMMEDIATE")
        return self.db.atomic()

    # --- schema ----------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations this database has not had yet; return their names.

        A lock keeps two processes from migrating at once: SQLite's write lock, or a
        PostgreSQL advisory lock held until the transaction ends. DDL is transactional on both,
        so a failed migration leaves the schema as it was.
        """
        applied: list[str] = []
        with self.transaction():
            if not self.is_sqlite:
                self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (POSTGRES_MIGRATION_LOCK,))
            self.db.create_tables([self.models.SchemaMigration])
            done = {row.version for row in self.models.SchemaMigration.select()}
            for version, name, step in MIGRATIONS:
                if version in done:
                    continue
                try:
                    step(self)
                except Exception as error:
                    raise DatabaseError(f"migration {version} ({name}) failed: {error}") from error
                self.models.SchemaMigration.create(version=version, name=name)
                applied.append(name)
        if applied:
            log.info("database_migrated", migrations=applied)
        return applied

    def schema_version(self) -> int:
        return self.models.SchemaMigration.select(peewee.fn.MAX(self.models.SchemaMigration.version)).scalar() or 0

    # --- the collection counter ------------------------------------------------------

    def change_counter(self) -> int:
        """Return the collection counter, which increases with every write to museums or paintings."""
        return self.models.CollectionState.select(self.models.CollectionState.counter).where(
            self.models.CollectionState.id == 1
        ).scalar() or 0

    def _bump_counter(self) -> None:
        state = self.models.CollectionState
        state.update(counter=state.counter + 1).where(state.id == 1).execute()

    # --- museums ---------------------------------------------------------------------

    def get_museum(self, museum_id: str) -> MuseumRow | None:
        row = self.models.Museum.get_or_none(self.models.Museum.id == museum_id)
        return None if row is None else MuseumRow(row.id, row.name, row.password_hash, row.created_at)

    def list_museums(self) -> list[MuseumRow]:
        return [MuseumRow(m.id, m.name, m.password_hash, m.created_at) for m in self.models.Museum.select()]

    def create_museum(self, museum_id: str, name: str, password_hash: str | None) -> bool:
        """Insert a museum; return False when the id is already taken."""
        with self.transaction():
            if self.models.Museum.get_or_none(self.models.Museum.id == museum_id) is not None:
                return False
            self.models.Museum.create(id=museum_id, name=name, password_hash=password_hash)
            self._bump_counter()
        return True

    def set_password_hash(self, museum_id: str, password_hash: str) -> None:
        """Store a rehashed password, e.g. after the argon2 parameters changed."""
        with self.transaction():
            self.models.Museum.update(password_hash=password_hash).where(self.models.Museum.id == museum_id).execute()

    # --- paintings -------------------------------------------------------------------

    def painting_rows(self) -> list[PaintingRow]:
        query = self.models.Painting.select().order_by(self.models.Painting.created_at, self.models.Painting.id)
        return [self._painting_row(p) for p in query]

    def get_painting(self, painting_id: str) -> PaintingRow | None:
        row = self.models.Painting.get_or_none(self.models.Painting.id == painting_id)
        return None if row is None else self._painting_row(row)

    def insert_paintings(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert paintings (dicts with the Painting fields); create museums that are missing.

        Museums created here get no password, so nobody can log in as them until an
        administrator sets one.
        """
        rows = list(rows)
        if not rows:
            return 0
        now = utc_now()
        with self.transaction():
            known = {m.id for m in self.models.Museum.select(self.models.Museum.id)}
            for museum_id in sorted({row["museum"] for row in rows} - known):
                self.models.Museum.create(id=museum_id, name=museum_id, password_hash=None)
            for row in rows:
                values = {**row, "created_at": row.get("created_at") or now, "updated_at": row.get("updated_at") or now}
                self.models.Painting.insert(**values).execute()
            self._bump_counter()
        return len(rows)

    def update_painting(self, painting_id: str, owner: str, changes: dict[str, str]) -> PaintingRow:
        """Change text fields of a painting of museum `owner`.

        Raises NotFound for an unknown id and NotOwner when the painting belongs to another museum.
        """
        painting = self.models.Painting
        with self.transaction():
            self._check_owner(painting_id, owner)
            painting.update(**changes, updated_at=utc_now()).where(painting.id == painting_id).execute()
            self._bump_counter()
        return self.get_painting(painting_id)

    def replace_painting(self, painting_id: str, owner: str, new_id: str, changes: dict[str, str]) -> tuple[PaintingRow, str]:
        """Copy a painting of `owner` under a new id with `changes` applied, then delete the old row.

        Used when the image changes: predictors index paintings by id, so a new id makes them
        index the new image and drop the old one. Returns the new row and the old image name.
        Raises NotFound or NotOwner like update_painting.
        """
        painting = self.models.Painting
        with self.transaction():
            old = self._check_owner(painting_id, owner)
            values = {
                field: getattr(old, field) for field in ("title", "artist", "year", "medium", "description", "image")
            }
            values.update(changes)
            painting.insert(
                id=new_id, museum=owner, created_at=old.created_at, updated_at=utc_now(), **values
            ).execute()
            painting.delete().where(painting.id == painting_id).execute()
            self._bump_counter()
        return self.get_painting(new_id), old.image

    def delete_painting(self, painting_id: str, owner: str) -> PaintingRow:
        """Delete a painting of museum `owner`; return the deleted row (its image is still on disk).

        Raises NotFound or NotOwner like update_painting.
        """
        painting = self.models.Painting
        with self.transaction():
            row = self._painting_row(self._check_owner(painting_id, owner))
            painting.delete().where(painting.id == painting_id).execute()
            self._bump_counter()
        return row

    def _check_owner(self, painting_id: str, owner: str):
        row = self.models.Painting.get_or_none(self.models.Painting.id == painting_id)
        if row is None:
            raise NotFound(painting_id)
        if row.museum_id != owner:
            raise NotOwner(painting_id)
        return row

    @staticmethod
    def _painting_row(row) -> PaintingRow:
        return PaintingRow(
            id=row.id,
            museum=row.museum_id,
            title=row.title,
            artist=row.artist,
            year=row.year,
            medium=row.medium,
            description=row.description,
            image=row.image,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    # --- training runs and model versions --------------------------------------------

    def record_run(self, run_id: str, total: int = 0, state: str = "running") -> None:
        """Insert a training run as it starts."""
        with self.transaction():
            self.models.TrainingRun.create(run_id=run_id, total=total, state=state)

    def update_run(self, run_id: str, **changes: Any) -> None:
        """Update a run's state, done, total, version, error, epochs (a list) or finished_at.

        Raises NotFound for an unknown run and ValueError for any other field name.
        """
        unknown = set(changes) - set(RUN_FIELDS)
        if unknown:
            raise ValueError(f"update_run: unknown fields {sorted(unknown)}; use {', '.join(RUN_FIELDS)}")
        if "epochs" in changes:
            changes["epochs"] = json.dumps(changes["epochs"])
        run = self.models.TrainingRun
        with self.transaction():
            if run.update(**changes).where(run.run_id == run_id).execute() == 0:
                raise NotFound(run_id)

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first, as dicts with `epochs` decoded."""
        run = self.models.TrainingRun
        rows = run.select().order_by(run.started_at.desc(), run.run_id.desc()).limit(limit)
        return [self._run_dict(r) for r in rows]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """Return one run as `list_runs` does, or None for an unknown id."""
        row = self.models.TrainingRun.get_or_none(self.models.TrainingRun.run_id == run_id)
        return None if row is None else self._run_dict(row)

    def running_run_ids(self) -> list[str]:
        """Return the ids of runs recorded as running."""
        run = self.models.TrainingRun
        return [r.run_id for r in run.select(run.run_id).where(run.state == "running")]

    @staticmethod
    def _run_dict(row) -> dict[str, Any]:
        return {
            "run_id": row.run_id,
            "state": row.state,
            "done": row.done,
            "total": row.total,
            "version": row.version,
            "error": row.error,
            "epochs": json.loads(row.epochs or "[]"),
            "started_at": row.started_at,
            "finished_at": row.finished_at,
        }

    def record_version(self, version: str, source: str, paintings: int = 0, run_id: str | None = None) -> None:
        """Insert a published model version, or update it when it is already recorded."""
        model = self.models.ModelVersion
        with self.transaction():
            model.insert(version=version, source=source, paintings=paintings, run=run_id).on_conflict(
                conflict_target=[model.version],
                update={model.source: source, model.paintings: paintings, model.run: run_id},
            ).execute()

    def list_versions(self) -> list[dict[str, Any]]:
        model = self.models.ModelVersion
        return [
            {
                "version": v.version,
                "source": v.source,
                "paintings": v.paintings,
                "run_id": v.run_id,
                "created_at": v.created_at,
            }
            for v in model.select().order_by(model.version)
        ]


# --- migrations ------------------------------------------------------------------------


def _create_tables(database: Database) -> None:
    models = database.models
    database.db.create_tables(
        [models.CollectionState, models.Museum, models.Painting, models.TrainingRun, models.ModelVersion]
    )
    models.CollectionState.insert(id=1, counter=0).on_conflict_ignore().execute()


def _import_legacy_catalogue(database: Database) -> None:
    """Copy `catalogue.json` of releases before the database into it, then rename the file.

    The rename happens after the rows are written inside the migration's transaction. A crash
    between the two leaves the file in place, but the recorded migration never runs again.
    """
    path = database.data_dir / LEGACY_CATALOGUE
    if not path.is_file():
        return
    rows = json.loads(path.read_text(encoding="utf-8"))
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None, microsecond=0)
    paintings = [
        {
            "id": row["id"],
            "museum": row["museum"],
            "title": row["title"],
            "artist": row.get("artist", ""),
            "year": row.get("year", ""),
            "medium": row.get("medium", ""),
            "description": row.get("description", ""),
            "image": row["image"],
            "created_at": written,
            "updated_at": written,
        }
        for row in rows
    ]
    database.insert_paintings(paintings)
    os.replace(path, path.with_name(LEGACY_CATALOGUE + ".imported"))
    log.info("legacy_catalogue_imported", paintings=len(paintings), path=str(path))


# (version, name, step). Append new steps; never change or reorder applied ones.
MIGRATIONS: list[tuple[int, str, Callable[[Database], None]]] = [
    (1, "create tables", _create_tables),
    (2, "import catalogue.json", _import_legacy_catalogue),
]


def open_database(data_dir: Path, database_url: str = "") -> Database:
    """Connect, migrate and return the database; the connection stays open for this thread."""
    database = Database(connect_database(data_dir, database_url), data_dir)
    try:
        database.migrate()
    except peewee.OperationalError as error:
        raise DatabaseError(f"storage.database_url: cannot open the database: {error}") from error
    return database
