"""Faces and their embeddings: each enrolled photo as uploaded, and one vector per model version."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy import Engine, delete, exc, select
from sqlalchemy.orm import Session

import errors
from facebank import models, transactions
from facebank.people import person_row
from facebank.records import Face, FaceImageData, GalleryRows, PendingFace


class Faces:
    """Enrol, list and remove people's photos; the same image is never enrolled twice."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        person_id: int,
        image_bytes: bytes,
        content_type: str,
        width: int,
        height: int,
        box: Sequence[float] | np.ndarray,
        landmarks: Sequence[float] | np.ndarray,
        embedding: np.ndarray,
        model_name: str,
        model_version: str,
    ) -> Face:
        """Enrol one photo of a person with its embedding, all or nothing.

        The same image (by SHA-256) is refused for everyone with ``DuplicateFace``, which names
        the face and person that already hold it.
        """
        if not image_bytes:
            raise errors.InvalidInput("the image is empty")
        if width <= 0 or height <= 0:
            raise errors.InvalidInput(f"image size must be positive, got {width}x{height}")
        embedding_row = _embedding_row(model_name, model_version, _vector(embedding))
        digest = hashlib.sha256(image_bytes).hexdigest()
        row = models.FaceImage(
            person_id=person_id,
            image=image_bytes,
            content_type=content_type,
            sha256=digest,
            width=width,
            height=height,
            box=_floats(box, 4, "box"),
            landmarks=_floats(landmarks, 10, "landmarks"),
        )
        try:
            with transactions.write(self.engine, bump_revision=True) as session:
                person_row(session, person_id)
                _check_dim(session, model_name, model_version, embedding_row.dim)
                row.embeddings.append(embedding_row)
                session.add(row)
                session.flush()
                return _face(row)
        except exc.IntegrityError as error:
            raise self._duplicate(digest, error) from error

    def of_person(self, person_id: int) -> list[Face]:
        """A person's faces in enrolment order (``PersonNotFound`` for nobody)."""
        with transactions.read(self.engine) as session:
            person_row(session, person_id)
            rows = session.scalars(
                select(models.FaceImage)
                .where(models.FaceImage.person_id == person_id)
                .order_by(models.FaceImage.id)
            )
            return [_face(row) for row in rows]

    def get(self, face_id: int) -> Face:
        with transactions.read(self.engine) as session:
            row = session.get(models.FaceImage, face_id)
            if row is None:
                raise errors.FaceNotFound(f"no face with id {face_id}")
            return _face(row)

    def image(self, face_id: int) -> FaceImageData:
        """The photo's original bytes."""
        with transactions.read(self.engine) as session:
            found = session.execute(
                select(
                    models.FaceImage.person_id, models.FaceImage.content_type, models.FaceImage.image
                ).where(models.FaceImage.id == face_id)
            ).one_or_none()
        if found is None:
            raise errors.FaceNotFound(f"no face with id {face_id}")
        person_id, content_type, data = found
        return FaceImageData(face_id=face_id, person_id=person_id, content_type=content_type, data=data)

    def delete(self, person_id: int, face_id: int) -> None:
        """Remove one photo of a person and its embeddings."""
        with transactions.write(self.engine, bump_revision=True) as session:
            person_row(session, person_id)
            deleted = session.execute(
                delete(models.FaceImage).where(
                    models.FaceImage.id == face_id, models.FaceImage.person_id == person_id
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.FaceNotFound(f"person {person_id} has no face {face_id}")

    def _duplicate(self, digest: str, error: exc.IntegrityError) -> Exception:
        """Name the face that already holds this image, or hand back the original error if none does."""
        with transactions.read(self.engine) as session:
            holder = session.execute(
                select(models.FaceImage.id, models.FaceImage.person_id).where(
                    models.FaceImage.sha256 == digest
                )
            ).one_or_none()
        if holder is None:
            return error
        return errors.DuplicateFace(
            f"this image is already enrolled as face {holder[0]} of person {holder[1]}"
        )


class Embeddings:
    """The vectors of enrolled faces, one per (face, model version): what galleries are built from."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, model_name: str, model_version: str, batch_size: int = 32) -> Iterator[PendingFace]:
        """Faces without an embedding by this model, in id order, ``batch_size`` photos per transaction."""
        embedded = (
            select(models.Embedding.id)
            .where(
                models.Embedding.face_id == models.FaceImage.id,
                models.Embedding.model_name == model_name,
                models.Embedding.model_version == model_version,
            )
            .exists()
        )
        after = 0
        while True:
            with transactions.read(self.engine) as session:
                batch = session.execute(
                    select(models.FaceImage.id, models.FaceImage.image, models.FaceImage.landmarks)
                    .where(models.FaceImage.id > after, ~embedded)
                    .order_by(models.FaceImage.id)
                    .limit(batch_size)
                ).all()
            for face_id, image, landmarks in batch:
                yield PendingFace(face_id, image, np.asarray(landmarks, dtype=np.float32).reshape(5, 2))
            if len(batch) < batch_size:
                return
            after = batch[-1][0]

    def put(self, face_id: int, model_name: str, model_version: str, vector: np.ndarray) -> None:
        """Store (or replace) a face's embedding by one model version."""
        values = _vector(vector)
        new_row = _embedding_row(model_name, model_version, values)
        with transactions.write(self.engine, bump_revision=True) as session:
            if session.get(models.FaceImage, face_id) is None:
                raise errors.FaceNotFound(f"no face with id {face_id}")
            _check_dim(session, model_name, model_version, values.size, except_face=face_id)
            existing = session.scalars(
                select(models.Embedding).where(
                    models.Embedding.face_id == face_id,
                    models.Embedding.model_name == model_name,
                    models.Embedding.model_version == model_version,
                )
            ).one_or_none()
            if existing is None:
                new_row.face_id = face_id
                session.add(new_row)
            else:
                existing.dim, existing.vector = new_row.dim, new_row.vector

    def gallery_rows(self, model_name: str, model_version: str) -> GalleryRows:
        """Every stored embedding of one model, in face id order (vectors as stored, not re-normalised)."""
        with transactions.read(self.engine) as session:
            rows = session.execute(
                select(
                    models.FaceImage.person_id,
                    models.Embedding.face_id,
                    models.Embedding.dim,
                    models.Embedding.vector,
                )
                .join(models.FaceImage, models.FaceImage.id == models.Embedding.face_id)
                .where(
                    models.Embedding.model_name == model_name, models.Embedding.model_version == model_version
                )
                .order_by(models.Embedding.face_id)
            ).all()
        dims = {dim for _, _, dim, _ in rows}
        if len(dims) > 1:
            raise RuntimeError(
                f"embeddings of {model_name} {model_version} have mixed dimensions {sorted(dims)}"
            )
        dim = dims.pop() if dims else 0
        person_ids = np.array([row[0] for row in rows], dtype=np.int64)
        face_ids = np.array([row[1] for row in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(row[3] for row in rows), dtype="<f4").reshape(len(rows), dim)
        return GalleryRows(person_ids, face_ids, vectors.astype(np.float32))


def _check_dim(
    session: Session, model_name: str, model_version: str, dim: int, except_face: int | None = None
) -> None:
    """One model version, one dimension: a mismatch means the caller mixed up models."""
    query = select(models.Embedding.dim).where(
        models.Embedding.model_name == model_name, models.Embedding.model_version == model_version
    )
    if except_face is not None:
        query = query.where(models.Embedding.face_id != except_face)
    stored = session.execute(query.limit(1)).scalar_one_or_none()
    if stored is not None and stored != dim:
        raise errors.InvalidInput(
            f"{model_name} {model_version} embeddings have {stored} dimensions, this one has {dim}"
        )


def _floats(values: Sequence[float] | np.ndarray, count: int, what: str) -> list[float]:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != count or not np.all(np.isfinite(array)):
        raise errors.InvalidInput(f"{what} must be {count} finite numbers, got {np.shape(values)}")
    return [float(v) for v in array]


def _vector(embedding: np.ndarray) -> np.ndarray:
    """The embedding as contiguous little-endian float32 [D], refusing what cosine similarity cannot use."""
    array = np.asarray(embedding)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.size == 0:
        raise errors.InvalidInput(f"an embedding must be one vector, got shape {array.shape}")
    vector = np.ascontiguousarray(array, dtype="<f4")
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm == 0.0:
        raise errors.InvalidInput("an embedding must be finite and non-zero")
    return vector


def _embedding_row(model_name: str, model_version: str, vector: np.ndarray) -> models.Embedding:
    if not model_name or not model_version:
        raise errors.InvalidInput("model_name and model_version are required")
    return models.Embedding(
        model_name=model_name, model_version=model_version, dim=vector.size, vector=vector.tobytes()
    )


def _face(row: models.FaceImage) -> Face:
    return Face(
        id=row.id,
        person_id=row.person_id,
        sha256=row.sha256,
        content_type=row.content_type,
        width=row.width,
        height=row.height,
        box=tuple(row.box),
        landmarks=tuple(row.landmarks),
        created_at=models.as_utc(row.created_at),
    )
