"""The facebank: one database of people, their photos, embeddings, rosters and applied thresholds.

``Facebank`` holds one aggregate per kind of thing, each a short class over the shared transaction
helper (``facebank.transactions``): ``bank.people``, ``bank.faces``, ``bank.embeddings``,
``bank.rosters``, ``bank.thresholds``, ``bank.cameras`` (the camera registry). What spans them
stays here: the revision every write that matters to matching bumps, and the counts. Duplicates
are refused by unique constraints, never by a check-then-insert race.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from facebank import db, models, transactions
from facebank.cameras import Cameras
from facebank.faces import Embeddings, Faces
from facebank.passwords import PasswordCipher
from facebank.people import People
from facebank.records import FacebankStats, ModelCount
from facebank.rosters import Rosters
from facebank.thresholds import Thresholds

_REVISION = select(models.FacebankState.revision).where(models.FacebankState.id == models.STATE_ROW_ID)


class Facebank:
    """The people, faces, embeddings, rosters, thresholds and cameras stored in one database.

    ``cipher`` encrypts and decrypts camera passwords (``ROLLCALL_SECRET_KEY``); None: the registry
    refuses passwords.
    """

    def __init__(self, engine: Engine, cipher: PasswordCipher | None = None) -> None:
        self.engine = engine
        self.people = People(engine)
        self.faces = Faces(engine)
        self.embeddings = Embeddings(engine)
        self.rosters = Rosters(engine)
        self.thresholds = Thresholds(engine)
        self.cameras = Cameras(engine, cipher)

    @classmethod
    def from_url(cls, url: str, cipher: PasswordCipher | None = None) -> Facebank:
        """A store on ``url`` (which must already be migrated with ``facebank.db.upgrade``)."""
        return cls(db.make_engine(url), cipher)

    def close(self) -> None:
        self.engine.dispose()

    def revision(self) -> int:
        """A number that changes with every write: one primary-key read, cheap enough for every task."""
        with db.unavailable_on_failure(self.engine.url), self.engine.connect() as connection:
            return connection.execute(_REVISION).scalar_one()

    def stats(self) -> FacebankStats:
        with transactions.read(self.engine) as session:
            revision = session.execute(_REVISION).scalar_one()
            people = session.execute(select(func.count()).select_from(models.Person)).scalar_one()
            faces = session.execute(select(func.count()).select_from(models.FaceImage)).scalar_one()
            per_model = session.execute(
                select(
                    models.Embedding.model_name,
                    models.Embedding.model_version,
                    func.max(models.Embedding.dim),
                    func.count(),
                )
                .group_by(models.Embedding.model_name, models.Embedding.model_version)
                .order_by(models.Embedding.model_name, models.Embedding.model_version)
            ).all()
        return FacebankStats(
            revision=revision,
            people=people,
            faces=faces,
            models=tuple(ModelCount(name, version, dim, count) for name, version, dim, count in per_model),
        )
