"""`make deploy-check`: build the images, run the compose deployment, use it as a user would, lose a worker.

1. Builds the `api` and `worker-cpu` images (and, where no registry answers, the local base, the
   wheelhouse and the Redis/PostgreSQL stand-ins: scripts/docker_local_base.sh, docker/standins.Dockerfile).
2. Starts docker/compose.yaml (+ docker/compose.check.yaml) with Redis, PostgreSQL, the API, three CPU
   worker containers and Flower.
3. Runs the README's "Try it" block against it, plus an attendance job.
4. SIGKILLs the worker container that runs a job and checks that the job succeeds on another container.
5. Scales the workers 3 -> 1 -> 3 while clients submit jobs, and checks that every accepted job succeeds.
6. Stops everything and removes the containers, network and volumes it made (the images stay, for the
   next build's cache; `--remove-images` removes them too).

Prints a report (also var/deploy/report.json) and exits 1 when any step failed or any accepted job was
lost. Takes minutes and ~7 GB of disk: it is not part of `make test`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "deploy"
LOCAL_BASE = "rollcall/bookworm-python:local"
OFFICIAL_BASE = "python:3.11.14-slim-bookworm"
TAG = "0.1.0"
CAMERA = "172.29.117.200:8080"  # docker/compose.check.yaml
PROJECT = "rollcall-check"
TERMINAL_STATES = {"succeeded", "failed", "revoked"}


class CheckFailed(Exception):
    """A step of the check did not do what a user would expect."""


@dataclass
class Report:
    builds_s: dict[str, float] = field(default_factory=dict)
    image_mb: dict[str, int] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, int] = field(
        default_factory=lambda: {"submitted": 0, "succeeded": 0, "failed": 0, "lost": 0}
    )
    refused: int = 0
    survivor: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def step(self, name: str, ok: bool, detail: str) -> None:
        self.steps.append({"step": name, "ok": ok, "detail": detail})
        print(f"[{'ok' if ok else 'FAILED'}] {name}: {detail}", flush=True)
        if not ok:
            self.problems.append(f"{name}: {detail}")

    def text(self) -> str:
        lines = ["rollcall deploy-check report", ""]
        lines += [f"build {name:<18} {seconds:7.1f} s" for name, seconds in self.builds_s.items()]
        lines += [f"image {name:<18} {mb:7d} MB" for name, mb in self.image_mb.items()]
        lines.append("")
        lines += [f"{'ok    ' if s['ok'] else 'FAILED'} {s['step']}: {s['detail']}" for s in self.steps]
        jobs = self.jobs
        lines += [
            "",
            f"jobs submitted {jobs['submitted']}, succeeded {jobs['succeeded']}, failed {jobs['failed']}, "
            f"lost {jobs['lost']} (refused at submission: {self.refused})",
        ]
        if self.survivor:
            s = self.survivor
            lines.append(
                f"survivor: job {s['job_id']} was running on {s['killed_worker']} when its container was "
                f"SIGKILLed; it succeeded on {s['finished_on']} {s['seconds_after_kill']:.1f} s later"
            )
        lines.append("result: " + ("PASSED" if not self.problems else "FAILED: " + "; ".join(self.problems)))
        return "\n".join(lines)


def run(
    cmd: Sequence[str], env: dict[str, str] | None = None, check: bool = True, quiet: bool = False
) -> str:
    """Run a command, its output appended to var/deploy/deploy-check.log; its stdout returned."""
    with (LOG_DIR / "deploy-check.log").open("a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        log.write(proc.stdout)
    if check and proc.returncode != 0:
        raise CheckFailed(f"`{' '.join(cmd)}` exited {proc.returncode} (see var/deploy/deploy-check.log)")
    if not quiet and proc.stdout.strip():
        print(proc.stdout.strip()[-2000:], flush=True)
    return proc.stdout


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, every_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise CheckFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")


def docker_cli() -> str:
    """A docker client that builds with BuildKit: the one on PATH when it has buildx, else Debian's."""
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
    if probe.returncode == 0 or not Path("/usr/bin/docker").exists():
        return "docker"
    return "/usr/bin/docker"


def build(report: Report, base: str) -> None:
    if base == LOCAL_BASE:
        started = time.monotonic()
        run(["scripts/docker_local_base.sh"])
        report.builds_s["local base+wheels"] = time.monotonic() - started
    cli = docker_cli()
    images = {
        "api": ["-f", "docker/Dockerfile", "--target", "api", "-t", f"rollcall/api:{TAG}"],
        "worker-cpu": [
            "-f",
            "docker/Dockerfile",
            "--target",
            "worker-cpu",
            "-t",
            f"rollcall/worker-cpu:{TAG}",
        ],
    }
    if base == LOCAL_BASE:
        standins = ["-f", "docker/standins.Dockerfile", "--target"]
        images["redis-standin"] = [*standins, "redis", "-t", "rollcall/redis-standin:local"]
        images["postgres-standin"] = [*standins, "postgres", "-t", "rollcall/postgres-standin:local"]
    for name, args in images.items():
        started = time.monotonic()
        run(
            [cli, "build", *args, "--build-arg", f"BASE_IMAGE={base}", "."],
            env=dict(os.environ, DOCKER_BUILDKIT="1"),
            quiet=True,
        )
        report.builds_s[name] = time.monotonic() - started
        tag = args[args.index("-t") + 1]
        size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], quiet=True).strip())
        report.image_mb[name] = round(size / 1e6)
        print(f"built {tag} in {report.builds_s[name]:.0f} s: {report.image_mb[name]} MB", flush=True)


class Deployment:
    """The compose project: its environment, its commands and the API as a client sees it."""

    def __init__(self, shared: Path, local: bool) -> None:
        self.key = secrets.token_urlsafe(18)
        self.flower_auth = ("check", secrets.token_urlsafe(12))
        self.api_port, self.flower_port = free_port(), free_port()
        self.env = dict(
            os.environ,
            COMPOSE_PROJECT_NAME=PROJECT,
            REDIS_PASSWORD=secrets.token_urlsafe(16),
            POSTGRES_PASSWORD=secrets.token_urlsafe(16),
            API_KEYS=f"{self.key}:admin",
            FLOWER_BASIC_AUTH=":".join(self.flower_auth),
            SECRET_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),  # a Fernet key
            CAMERA_ALLOW=f"{CAMERA.split(':')[0]}/32",
            API_PORT=str(self.api_port),
            FLOWER_PORT=str(self.flower_port),
            CPU_WORKER_CONCURRENCY="1",
            PROBE_DIR=str(shared / "datasets" / "facebank_probe"),
            IMAGE_TAG=TAG,
        )
        if not local:  # the official images compose.yaml names, instead of the stand-ins
            for service, variable in (("redis", "REDIS_IMAGE"), ("postgres", "POSTGRES_IMAGE")):
                self.env[variable] = official_image(service)
        files = ["-f", "docker/compose.yaml", "-f", "docker/compose.check.yaml"]
        self.services = ["redis", "postgres", "api", "worker-cpu", "flower", "camera"]
        self.compose_cmd = ["docker-compose", "-p", PROJECT, *files, "--profile", "cpu"]
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = self.key

    def compose(self, *args: str, check: bool = True) -> str:
        return run([*self.compose_cmd, *args], env=self.env, check=check, quiet=True)

    def scale(self, workers: int) -> None:
        # Services named: compose 1.29 wants an image for worker-gpu even at --scale worker-gpu=0.
        self.compose("up", "-d", "--no-build", "--scale", f"worker-cpu={workers}", *self.services)

    def workers_ready(self) -> int:
        try:
            answer = self.session.get(f"{self.api}/readyz", timeout=10).json()
        except (requests.RequestException, ValueError):
            return 0
        return int(answer.get("checks", {}).get("workers", 0))

    def worker_containers(self) -> list[str]:
        return self.compose("ps", "-q", "worker-cpu").split()

    def submit(self, kind: str, body: dict[str, Any]) -> str | None:
        """A job id, or None when the API refused the job (counted, never silently dropped)."""
        response = self.session.post(f"{self.api}/v1/jobs/{kind}", json=body, timeout=30)
        return str(response.json()["job_id"]) if response.status_code == 202 else None

    def job(self, job_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.session.get(f"{self.api}/v1/jobs/{job_id}", timeout=30).json()
        return answer

    def wait_job(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        return wait_for(
            lambda: (j := self.job(job_id))["state"] in TERMINAL_STATES and j, timeout_s, f"job {job_id}", 0.5
        )

    def flower_task_worker(self, job_id: str) -> str | None:
        url = f"http://127.0.0.1:{self.flower_port}/api/task/info/{job_id}"
        try:
            response = requests.get(url, auth=self.flower_auth, timeout=10)
        except requests.RequestException:
            return None
        worker = response.json().get("worker") if response.status_code == 200 else None
        return str(worker) if worker else None


def official_image(service: str) -> str:
    """The image compose.yaml names for ``service`` (redis, postgres)."""
    import yaml

    spec = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"][service]
    return str(spec["image"])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- readme-example:start -->\n```bash\n(.*?)```\n<!-- readme-example:end -->", readme, re.S
    )
    if block is None:
        raise CheckFailed("README lacks the readme-example block")
    return block.group(1)


def try_it(report: Report, deployment: Deployment, shared: Path) -> None:
    """The README's "Try it" block as written, against the containers, then an attendance job."""
    script = (
        readme_example()
        .replace("$(cat var/dev-api-key)", deployment.key)
        .replace("localhost:8000", f"localhost:{deployment.api_port}")
        .replace("127.0.0.1:8080", CAMERA)
        .replace("../shared", str(shared))
    )
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    enrolled = [line for line in lines if "face_id" in line or "sha256" in line]
    detect = next((line for line in lines if line.get("type") == "detect"), {})
    seed_boxes = next((line for line in lines if set(line) == {"box"}), {})
    named = sorted(lines[-1].get("id", [])) if lines else []
    ok = (
        proc.returncode == 0
        and len(enrolled) == 2
        and detect.get("state") == "succeeded"
        and len(detect["result"]["faces"]) >= 2
        and len(seed_boxes.get("box", [])) >= 2
        and named == ["biden", "obama"]
    )
    faces = len(detect.get("result", {}).get("faces", [])) if detect.get("result") else 0
    report.step(
        "README 'Try it'",
        ok,
        f"2 people enrolled: {len(enrolled) == 2}; detect {detect.get('state')} with {faces} faces; "
        f"/modelfr {len(seed_boxes.get('box', []))} boxes; /modelat {named}"
        + ("" if ok else f"; stderr: {proc.stderr[-300:]}"),
    )
    job_id = deployment.submit("attendance", {"url": f"http://{CAMERA}/two_people.jpg"})
    result = deployment.wait_job(job_id, 180) if job_id else {"state": "refused"}
    present = sorted(e["person"]["display_name"] for e in (result.get("result") or {}).get("present", []))
    report.step("attendance job", present == ["biden", "obama"], f"{result['state']}, present {present}")
    count(report, [result["state"]])


def lose_a_worker(report: Report, deployment: Deployment) -> None:
    """SIGKILL the container whose worker runs a job; the job must succeed on another container."""
    body = {"url": f"http://{CAMERA}/two_people.jpg", "small_faces": {"mode": "on"}}
    job_id = deployment.submit("attendance", body)
    if job_id is None:
        raise CheckFailed("the API refused the job meant for the worker-loss step")
    worker = wait_for(
        lambda: deployment.job(job_id)["state"] == "running" and deployment.flower_task_worker(job_id),
        120,
        "the job to run on a worker (Flower's /api/task/info)",
        0.2,
    )
    container = worker.split("@", 1)[1]  # rollcall-cpu@<hostname>, and a container's hostname is its id
    # Compose's restart policy would bring the same container (same worker name) back at once; keep it
    # down so that "another container" is what finishes the job. The scaling step starts a new one.
    run(["docker", "update", "--restart=no", container], quiet=True)
    run(["docker", "kill", container], quiet=True)
    killed_at = time.monotonic()
    result = deployment.wait_job(job_id, 600)
    seconds = time.monotonic() - killed_at
    finished_on = (result.get("result") or {}).get("worker", "?")
    ok = result["state"] == "succeeded" and finished_on != worker
    report.survivor = {
        "job_id": job_id,
        "killed_worker": worker,
        "finished_on": finished_on,
        "seconds_after_kill": round(seconds, 1),
    }
    count(report, [result["state"]])
    report.step(
        "worker container killed mid-job",
        ok,
        f"job {result['state']} on {finished_on} {seconds:.1f} s after {worker} was SIGKILLed",
    )


def count(report: Report, states: list[str]) -> None:
    """Add accepted jobs' final states to the report: anything not ended by the deadline is lost."""
    report.jobs["submitted"] += len(states)
    report.jobs["succeeded"] += sum(state == "succeeded" for state in states)
    report.jobs["failed"] += sum(state in {"failed", "revoked"} for state in states)
    report.jobs["lost"] += sum(state not in TERMINAL_STATES for state in states)


class Clients:
    """Threads that submit detect jobs at a steady pace and remember every job the API accepted."""

    def __init__(self, deployment: Deployment, count: int, pause_s: float) -> None:
        self.deployment = deployment
        self.pause_s = pause_s
        self.accepted: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._submit, daemon=True) for _ in range(count)]

    def _submit(self) -> None:
        body = {"url": f"http://{CAMERA}/two_people.jpg"}
        while not self.stop.is_set():
            try:
                job_id = self.deployment.submit("detect", body)
            except requests.RequestException:
                job_id = None
            with self.lock:
                if job_id is None:
                    self.refused += 1
                else:
                    self.accepted.append(job_id)
            self.stop.wait(self.pause_s)

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def scale_under_load(report: Report, deployment: Deployment, phase_s: float) -> None:
    """Workers 3 -> 1 -> 3 while two clients submit; every accepted job must succeed."""
    timeline = []
    with Clients(deployment, count=2, pause_s=1.0) as clients:
        started = time.monotonic()
        time.sleep(phase_s)
        deployment.scale(1)
        timeline.append(f"3->1 at {time.monotonic() - started:.0f} s")
        wait_for(lambda: len(deployment.worker_containers()) == 1, 180, "one worker container")
        time.sleep(phase_s)
        deployment.scale(3)
        timeline.append(f"1->3 at {time.monotonic() - started:.0f} s")
        wait_for(lambda: deployment.workers_ready() >= 3, 300, "three workers to consume the queue", 2)
        timeline.append(f"3 ready at {time.monotonic() - started:.0f} s")
        time.sleep(phase_s)
    states: dict[str, str] = {}
    deadline = time.monotonic() + 900
    for job_id in clients.accepted:
        try:
            states[job_id] = deployment.wait_job(job_id, max(1.0, deadline - time.monotonic()))["state"]
        except CheckFailed:
            states[job_id] = "lost"
    count(report, list(states.values()))
    succeeded = sum(state == "succeeded" for state in states.values())
    failed = sum(state in {"failed", "revoked"} for state in states.values())
    lost = sum(state == "lost" for state in states.values())
    report.refused += clients.refused
    report.step(
        "scale 3 -> 1 -> 3 under load",
        failed == 0 and lost == 0,
        f"{len(states)} jobs accepted, {succeeded} succeeded, {failed} failed, {lost} lost, "
        f"{clients.refused} refused; {', '.join(timeline)}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base",
        default=os.environ.get("DEPLOY_BASE_IMAGE", LOCAL_BASE),
        help=f"base image: {LOCAL_BASE} (made here, offline; the default) or {OFFICIAL_BASE}",
    )
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared data folder")
    parser.add_argument("--phase-s", type=float, default=20.0, help="seconds of each scaling phase")
    parser.add_argument("--skip-build", action="store_true", help="use the images already built")
    parser.add_argument("--keep", action="store_true", help="leave the deployment running (debugging)")
    parser.add_argument("--remove-images", action="store_true", help="also remove the images it built")
    args = parser.parse_args(argv)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "deploy-check.log").write_text("")
    shared = args.shared.resolve()
    report = Report()
    deployment = Deployment(shared, local=args.base == LOCAL_BASE)
    try:
        if not args.skip_build:
            build(report, args.base)
        deployment.compose("down", "-v", "--remove-orphans", check=False)
        started = time.monotonic()
        deployment.scale(3)
        wait_for(lambda: deployment.workers_ready() >= 3, 600, "the API to see three workers", 2)
        report.step("compose up", True, f"API and 3 CPU workers ready in {time.monotonic() - started:.0f} s")
        flower = requests.get(
            f"http://127.0.0.1:{deployment.flower_port}/api/workers", auth=deployment.flower_auth
        )
        report.step(
            "Flower", flower.status_code == 200, f"/api/workers answers {flower.status_code} with its login"
        )
        try_it(report, deployment, shared)
        lose_a_worker(report, deployment)
        deployment.scale(3)
        wait_for(lambda: deployment.workers_ready() >= 3, 300, "three workers again", 2)
        scale_under_load(report, deployment, args.phase_s)
    except (CheckFailed, requests.RequestException, KeyError, ValueError) as exc:
        report.step("deploy-check", False, str(exc))
    finally:
        if not args.keep:
            deployment.compose("down", "-v", "--remove-orphans", check=False)
            if args.remove_images:
                tags = [f"rollcall/api:{TAG}", f"rollcall/worker-cpu:{TAG}"]
                run(["docker", "image", "rm", *tags], check=False, quiet=True)
    text = report.text()
    print("\n" + text)
    (LOG_DIR / "report.txt").write_text(text + "\n")
    (LOG_DIR / "report.json").write_text(json.dumps(report.__dict__, indent=2) + "\n")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
