"""Uploaded images, stored once beside the job that reads them, and named in its message by reference.

An upload used to travel inside the job's message as base64: a 19.9 MB photo became a 26.5 MB message,
copied into the broker (and its append-only file), into every redelivery and into Flower's events.
Now the API writes the decoded bytes once, under the job's id, in the result backend's Redis
(``put``), and the message names the job whose upload it is (``FrameSource.upload``). The bytes stay
there until the job ends (``delete``, by the worker, after its outcome is stored), so a job that is
redelivered after its worker died reads them again; at the latest they expire with the job's record
(``ROLLCALL_RESULT_EXPIRES_S``), and a job that a worker takes only after that fails with
``upload_expired``, which tells its sender to send the image again.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from errors import UploadExpired


def upload_key(job_id: str) -> str:
    return f"rollcall:upload:{job_id}"


@dataclass(frozen=True)
class Uploads:
    """The uploads in one Redis (the result backend's), each kept ``expires_s`` at most."""

    client: redis.Redis
    expires_s: int

    def put(self, job_id: str, data: bytes) -> None:
        self.client.set(upload_key(job_id), data, ex=self.expires_s)

    def read(self, job_id: str) -> bytes:
        """The bytes uploaded for ``job_id``; ``UploadExpired`` when they are gone."""
        data: bytes | None = self.client.get(upload_key(job_id))  # type: ignore[assignment]  # no decode_responses
        if data is None:
            raise UploadExpired(
                "the uploaded image is no longer stored: the job waited longer than uploads are kept "
                "(ROLLCALL_RESULT_EXPIRES_S); send the image again"
            )
        return data

    def delete(self, job_id: str) -> None:
        self.client.delete(upload_key(job_id))
