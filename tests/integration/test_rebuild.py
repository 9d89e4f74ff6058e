"""Switching the embedding model: a worker with another model re-embeds the whole facebank on request.

FaceNet's released weights cannot be downloaded here, so the test places a FaceNet file of its own
making (random weights, same architecture) in a model folder by hand, as an operator would with a
file copied from elsewhere; the model store records its sha256 on first fetch.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import torch

from ml.facenet import InceptionResnetV1
from ml.weights import ModelStore
from settings import get_settings
from tests.conftest import System, wait_for_job
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration
PHOTOS = {"obama": ["obama.jpg", "obama2.jpg"], "biden": ["biden.jpg"]}


@pytest.fixture()
def model_dir_with_facenet(tmp_path: Path) -> Path:
    """The verified weights of the default models, plus a FaceNet file placed by hand."""
    folder = tmp_path / "models"
    folder.mkdir()
    default = ModelStore(get_settings().model_dir)
    for name in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "dlib_resnet_v1"):
        source = default.path(name)
        (folder / source.name).symlink_to(source)
    torch.manual_seed(0)
    torch.save(InceptionResnetV1().state_dict(), folder / "facenet_vggface2.pt")
    ModelStore(folder).fetch("facenet_vggface2")  # records the hand-placed file's sha256
    return folder


def enrol(system: System) -> int:
    client = system.client()
    faces = 0
    for person, photos in PHOTOS.items():
        created = client.post("/v1/people", json={"display_name": person, "external_id": f"rebuild-{person}"})
        assert created.status_code == 201
        for photo in photos:
            data = base64.b64encode(
                (shared_dir() / "datasets/facebank" / person / photo).read_bytes()
            ).decode()
            added = client.post(f"/v1/people/{created.get_json()['id']}/faces", json={"image_b64": data})
            assert added.status_code == 201, added.get_json()
            faces += 1
    return faces


def embeddings_by_model(client: Any) -> dict[str, int]:
    stats = client.get("/v1/facebank/stats").get_json()
    return {model["model_name"]: model["embeddings"] for model in stats["models"]}


def rebuild(client: Any) -> dict[str, Any]:
    response = client.post("/v1/facebank/rebuild")
    assert response.status_code == 202
    job = wait_for_job(client, response.get_json()["job_id"])
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def test_rebuild_re_embeds_every_face_for_a_newly_configured_model(
    system_factory: Any, model_dir_with_facenet: Path
) -> None:
    system = system_factory("rebuild", ROLLCALL_MODEL_DIR=str(model_dir_with_facenet))
    client = system.client()
    dlib_worker = system.worker("dlib")
    faces = enrol(system)
    assert embeddings_by_model(client) == {"dlib_resnet_v1": faces}
    dlib_worker.stop()

    system.env["ROLLCALL_EMBEDDER"] = "facenet_vggface2"
    system.worker("facenet")
    first = rebuild(client)
    assert (first["embedded"], first["failed"]) == (faces, 0)
    assert first["models"]["embedder"] == "facenet_vggface2"
    assert embeddings_by_model(client) == {"dlib_resnet_v1": faces, "facenet_vggface2": faces}
    # Nothing is left to do the second time: every face has an embedding for this model.
    assert rebuild(client)["embedded"] == 0
