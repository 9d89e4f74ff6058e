"""rollcall's container and deployment files, checked without a Docker engine or a cluster.

`make deploy-check` (scripts/deploy_check.py) builds the api and worker-cpu images and runs the compose
file for real; it takes minutes, so it is not part of `make test`. Here nothing builds an image or
starts a container: the tests read docker/Dockerfile, docker/compose.yaml and docker/k8s/*.yaml and
hold them to the code they start: every command names a real entry point with options its program
accepts, every ROLLCALL_* variable is a setting with a valid value, workers consume the model queue,
a GPU worker owns exactly one GPU, images run as an unprivileged user with weights verified at build
time, and no secret is committed.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import AliasChoices, SecretStr

from settings import Settings
from tests.deploy import dockerfile as dockerfile_reader
from tests.deploy import dockerignore
from tests.deploy.commands import (
    entry_point_problem,
    exec_commands,
    is_project_command,
    option,
    shell_commands,
)
from tests.shared_data import REPO_ROOT

DOCKER_DIR = REPO_ROOT / "docker"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
FINAL_TARGETS = ("api", "worker-cpu", "worker-gpu")
WORKER_TARGETS = ("worker-cpu", "worker-gpu")
ONE_SHOT_SERVICES = {"migrate"}  # run to completion before the services that depend on them
MODEL_QUEUE = Settings.model_fields["model_queue"].default
IO_QUEUE = Settings.model_fields["io_queue"].default  # callback deliveries (tasks.callbacks)
BULK_QUEUE = Settings.model_fields[
    "bulk_queue"
].default  # enrolment, rebuild, session ticks (contract.routing)
FRAME_QUEUE = Settings.model_fields["frame_queue"].default  # attendance sessions' frames
LIVE_QUEUE = Settings.model_fields["live_queue"].default  # what makes a worker a stream reader
JOB_TIME_LIMIT_S = Settings.model_fields["job_time_limit_s"].default
# A field's variable, and the names its aliases still read (ROLLCALL_SEED_WAIT_S: ROLLCALL_LEGACY_WAIT_S).
SETTING_VARIABLES = {f"ROLLCALL_{name.upper()}" for name in Settings.model_fields} | {
    alias.upper()
    for field in Settings.model_fields.values()
    if isinstance(field.validation_alias, AliasChoices)
    for alias in field.validation_alias.choices
    if isinstance(alias, str)
}
# The packages the images leave out on purpose (pyproject.toml ships them for developers).
NOT_IN_IMAGES = {"benchmarks", "evaluation"}  # measurement tooling: workers never run it
# torch and the CUDA packages it pins: the Dockerfile chooses their build per target.
TORCH_STACK = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")
# PostgreSQL numbers its releases major.minor since version 10; other images use major.minor.patch.
VERSION_PARTS = {"postgres": 2}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|BASIC_AUTH|REQUIREPASS|API_KEY", re.I)
SECRET_SETTINGS = {
    f"ROLLCALL_{n.upper()}" for n, f in Settings.model_fields.items() if f.annotation is SecretStr
}
REQUIRED_VARIABLE = re.compile(r"^\$\{\w+:\?[^}]*\}$")
# An optional secret (a callback key, an MQTT URL with its password): from the environment or empty.
OPTIONAL_VARIABLE = re.compile(r"^\$\{\w+:-\}$")
URL_PASSWORD = re.compile(r"://[^/@\s:]*:(?P<password>[^@\s]*)@")
PLACEHOLDER = "placeholder"
REQUIRED_EXAMPLE = re.compile(r"\be\.g\. (?P<example>\S+)$")


# --- reading the files ---
@functools.cache
def dockerfile() -> dockerfile_reader.Dockerfile:
    return dockerfile_reader.read(DOCKER_DIR / "Dockerfile")


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


@functools.cache
def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DOCKER_DIR / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def k8s_one(kind: str) -> dict[str, Any]:
    found = [doc for doc in k8s_documents() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in docker/k8s, found {len(found)}"
    return found[0]


def k8s_deployment(component: str) -> dict[str, Any]:
    """The Deployment of one component (``worker-gpu``, ``reader``)."""
    found = [
        doc
        for doc in k8s_documents()
        if doc["kind"] == "Deployment"
        and doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    assert len(found) == 1, f"expected one {component} Deployment in docker/k8s, found {len(found)}"
    return found[0]


def k8s_containers(component: str = "worker-gpu") -> dict[str, dict[str, Any]]:
    containers = k8s_deployment(component)["spec"]["template"]["spec"]["containers"]
    return {container["name"]: container for container in containers}


def k8s_worker_container() -> dict[str, Any]:
    containers = k8s_containers()
    assert set(containers) == {"worker", "io-worker"}, "the GPU worker pod: the model worker, the io worker"
    return containers["worker"]


_COMPOSE_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


def interpolate(value: str) -> str:
    """``value`` as compose reads it with no variable set: defaults apply, required ones get the example
    their message gives (``${X:?… e.g. value}``: it must be a valid value), else a placeholder."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        op = match.group("op")
        if op and op.endswith("-"):
            return match.group("arg")
        example = REQUIRED_EXAMPLE.search(match.group("arg") or "")
        return example.group("example") if example else PLACEHOLDER

    return _COMPOSE_VARIABLE.sub(substitute, value)


def strings(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


# --- commands ---
@dataclass(frozen=True)
class Command:
    """A command line found in a deployment file, and where it was found (for messages)."""

    where: str
    argv: tuple[str, ...]


def healthcheck_commands(test: str | list[str]) -> list[list[str]]:
    """The commands of a compose ``healthcheck.test`` or a Dockerfile ``HEALTHCHECK CMD``."""
    if isinstance(test, str):
        return shell_commands(test)
    if test[0] == "CMD-SHELL":
        return shell_commands(test[1])
    assert test[0] == "CMD", f"unexpected healthcheck form {test}"
    return exec_commands(test[1:])


def dockerfile_healthcheck(target: str) -> list[list[str]]:
    instructions = dockerfile().inherited(target, "HEALTHCHECK")
    assert instructions, f"Dockerfile target {target} has no HEALTHCHECK"
    kind, _, rest = instructions[-1].args.partition(" ")
    assert kind.upper() == "CMD", f"Dockerfile target {target}: HEALTHCHECK {kind} checks nothing"
    exec_form = dockerfile_reader.Instruction("CMD", {}, rest, 0).exec_form()
    return exec_commands(exec_form) if exec_form is not None else shell_commands(rest)


def dockerfile_cmd(target: str) -> list[str]:
    instructions = dockerfile().inherited(target, "CMD")
    assert instructions, f"Dockerfile target {target} has no CMD"
    argv = instructions[-1].exec_form()
    assert argv is not None, (
        f"Dockerfile target {target}: use the exec form of CMD (signals reach the process)"
    )
    return argv


def built_services() -> dict[str, dict[str, Any]]:
    """The compose services that run an image built from docker/Dockerfile."""
    return {name: spec for name, spec in services().items() if "build" in spec}


def service_command(name: str) -> list[str]:
    spec = services()[name]
    if "command" in spec:
        command = spec["command"]
        return (
            [interpolate(c) for c in command]
            if isinstance(command, list)
            else shlex.split(interpolate(command))
        )
    return dockerfile_cmd(spec["build"]["target"])


def service_healthcheck(name: str) -> list[list[str]]:
    """The service's own healthcheck, else the one its image was built with."""
    spec = services()[name]
    if "healthcheck" in spec:
        test = spec["healthcheck"]["test"]
        return healthcheck_commands(
            [interpolate(t) for t in test] if isinstance(test, list) else interpolate(test)
        )
    return dockerfile_healthcheck(spec["build"]["target"])


def probe_commands(container: dict[str, Any], probe: str) -> list[list[str]]:
    assert probe in container, f"the k8s worker has no {probe}"
    return exec_commands(container[probe]["exec"]["command"])


def all_commands() -> list[Command]:
    """Every command that starts or probes a rollcall process, in every deployment file."""
    df = dockerfile()
    found: list[Command] = []
    for target in FINAL_TARGETS:
        found.append(Command(f"Dockerfile {target} CMD", tuple(dockerfile_cmd(target))))
        found += [
            Command(f"Dockerfile {target} HEALTHCHECK", tuple(c)) for c in dockerfile_healthcheck(target)
        ]
    for stage in df.stages:
        for run in stage.all("RUN"):
            for argv in shell_commands(df.expand(run.args, stage.name)):
                if is_project_command(argv):
                    found.append(Command(f"Dockerfile {stage.name} RUN (line {run.line})", tuple(argv)))
    for name in built_services():
        found.append(Command(f"compose {name} command", tuple(service_command(name))))
        found += [Command(f"compose {name} healthcheck", tuple(c)) for c in service_healthcheck(name)]
    container = k8s_worker_container()
    found.append(Command("k8s worker command", tuple(container["command"] + container.get("args", []))))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in container:
            found += [Command(f"k8s worker {probe}", tuple(c)) for c in probe_commands(container, probe)]
    reader = k8s_containers("reader")["reader"]
    found.append(Command("k8s reader command", tuple(reader["command"])))
    for probe in ("readinessProbe", "livenessProbe"):
        found += [Command(f"k8s reader {probe}", tuple(c)) for c in probe_commands(reader, probe)]
    return found


# --- the Dockerfile ---
def test_dockerfile_builds_the_three_targets() -> None:
    assert set(FINAL_TARGETS) <= set(dockerfile().stage_names)


def test_every_base_image_is_pinned_to_an_exact_version() -> None:
    images = [(f"Dockerfile line {s.line}", s.base) for s in dockerfile().stages]
    images = [(where, ref) for where, ref in images if ref not in dockerfile().stage_names]
    images += [(f"compose {n}", spec["image"]) for n, spec in services().items() if "build" not in spec]
    images.append(("k8s worker", k8s_worker_container()["image"]))
    assert len(images) >= 4, "expected the Python base, Redis, PostgreSQL and the k8s worker image"
    for where, ref in images:
        if "@sha256:" in ref:
            continue
        repository, _, tag = ref.rpartition(":")
        assert repository and "/" not in tag, f"{where}: {ref} has no tag"
        parts = VERSION_PARTS.get(repository.rsplit("/", 1)[-1], 3)
        assert re.match(rf"\d+(\.\d+){{{parts - 1}}}(?![.\d])", tag), (
            f"{where}: {ref} is not pinned to an exact release (a tag such as 'latest' or '3.11' moves)"
        )


def test_final_images_run_as_the_unprivileged_user_the_base_creates() -> None:
    for target in FINAL_TARGETS:
        users = dockerfile().inherited(target, "USER")
        assert users, f"{target} runs as root"
        user = users[-1].args.split(":")[0]
        assert user not in ("root", "0"), f"{target} runs as root"
        created = [
            r for r in dockerfile().inherited(target, "RUN") if re.search(rf"useradd\b.*\b{user}\b", r.args)
        ]
        assert created, f"{target} runs as {user}, but no stage it is built on creates that user"


def test_final_images_have_a_healthcheck_that_probes_their_own_process() -> None:
    for target in WORKER_TARGETS:
        (ping,) = dockerfile_healthcheck(target)
        assert ping[:5] == ["celery", "-A", "tasks", "inspect", "ping"], f"{target}: {ping}"
    (probe,) = dockerfile_healthcheck("api")
    bind = option(dockerfile_cmd("api"), "--bind", "-b")
    assert bind is not None, "the API binds no address"
    port = bind.rsplit(":", 1)[1]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", probe[-1])
    assert url is not None and url.group(1) == port, (
        f"the API healthcheck does not call the API's port {port}"
    )
    routes = {rule.rule for rule in importlib.import_module("webapi").create_app().url_map.iter_rules()}
    assert url.group(2) in routes, f"the API healthcheck calls {url.group(2)}, which the API does not serve"
    assert str(port) in {i.args for i in dockerfile().inherited("api", "EXPOSE")}


def test_worker_images_carry_weights_fetched_and_verified_at_build_time() -> None:
    df = dockerfile()
    for target in WORKER_TARGETS:
        model_dir = df.env(target).get("ROLLCALL_MODEL_DIR")
        assert model_dir, f"{target} does not set ROLLCALL_MODEL_DIR to the baked weights"
        fetching = [
            name
            for name in df.feeders(target) - {target}
            if any("-m ml.weights fetch" in r.args for r in df.stage(name).all("RUN"))
        ]
        assert fetching, f"no stage that {target} is built from fetches the weights"
        for name in fetching:
            assert df.env(name).get("ROLLCALL_MODEL_DIR") == model_dir, f"stage {name} fetches elsewhere"
        copies = [
            shlex.split(c.args) for c in df.inherited(target, "COPY") if c.flags.get("from") in fetching
        ]
        assert [model_dir, model_dir] in [c[-2:] for c in copies], f"{target} does not copy {model_dir}"
        # The final stage checks the files again as the user the worker runs as.
        own = df.stage(target).instructions
        user_at = next(i for i, ins in enumerate(own) if ins.keyword == "USER")
        assert any(ins.keyword == "RUN" and "-m ml.weights fetch" in ins.args for ins in own[user_at:]), (
            f"{target} does not verify its weights as the runtime user"
        )


def test_api_image_carries_no_weights() -> None:
    df = dockerfile()
    weight_stages = {s.name for s in df.stages if any("ml.weights fetch" in r.args for r in s.all("RUN"))}
    assert not df.feeders("api") & weight_stages, "the API never loads a model; keep weights out of its image"


def test_images_install_the_torch_pair_the_makefile_pins() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    pair = re.search(r"^TORCH_PAIR\s*:=\s*torch==(\S+)\s+torchvision==(\S+)", makefile, re.M)
    assert pair is not None, "the Makefile no longer pins TORCH_PAIR"
    df = dockerfile()
    assert (df.global_args["TORCH_VERSION"], df.global_args["TORCHVISION_VERSION"]) == pair.groups()
    for target in FINAL_TARGETS:
        # Each final image is built on its environment stage (FROM venv-cpu / venv-gpu), which installs torch.
        install = " ".join(
            df.expand(r.args, stage.name)
            for stage in df.chain(target)
            for r in stage.all("RUN")
            if "torch==" in r.args
        )
        assert f"torch=={pair.group(1)}" in install and f"torchvision=={pair.group(2)}" in install, target
        cpu_build = "download.pytorch.org/whl/cpu" in install
        assert cpu_build == (target != "worker-gpu"), f"{target} installs the wrong torch build: {install}"


def test_images_get_every_project_module_and_only_tested_versions() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel_stage = next(s for s in dockerfile().stages if any("pip wheel" in r.args for r in s.all("RUN")))
    copied = {src for c in wheel_stage.all("COPY") for src in shlex.split(c.args)[:-1]}
    modules = {f"{m}.py" for m in pyproject["tool"]["setuptools"]["py-modules"]}
    packages = {
        path.name
        for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
        for path in REPO_ROOT.glob(pattern.rstrip("*"))
        if path.is_dir()
    }
    assert modules | (packages - NOT_IN_IMAGES) <= copied, "the image build leaves part of the project out"

    constraints = (DOCKER_DIR / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pinned = {canonicalize_name(line.split("==")[0]) for line in constraints if "==" in line}
    assert not {p for p in pinned if TORCH_STACK.match(p)}, "constraints.txt must leave the torch stack alone"
    pending = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    needed: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in needed or TORCH_STACK.match(name):
            continue
        needed.add(name)
        environments = [{"extra": extra} for extra in requirement.extras] + [{"extra": ""}]
        for text in importlib.metadata.distribution(name).requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments):
                pending.append(sub)
    assert needed - pinned == set(), (
        f"runtime dependencies without a version in constraints.txt: {needed - pinned}"
    )


# --- every file: commands and settings ---
def test_every_command_starts_a_real_entry_point_with_accepted_options() -> None:
    commands = all_commands()
    assert {c.argv[0] for c in commands} >= {"celery", "gunicorn", "python"}
    problems = [f"{c.where}: {' '.join(c.argv)}: {p}" for c in commands if (p := entry_point_problem(c.argv))]
    assert not problems, "\n".join(problems)


def deployment_texts() -> dict[str, str]:
    paths = [DOCKER_DIR / "Dockerfile", DOCKER_DIR / "compose.yaml", DOCKER_DIR / "env.example"]
    paths += [DOCKER_DIR / "README.md", *sorted((DOCKER_DIR / "k8s").glob("*.yaml"))]
    return {str(p.relative_to(REPO_ROOT)): p.read_text(encoding="utf-8") for p in paths}


def test_every_rollcall_variable_is_a_setting() -> None:
    unknown = {
        (path, name)
        for path, text in deployment_texts().items()
        for name in re.findall(r"\bROLLCALL_[A-Z0-9_]+", text)
        if name not in SETTING_VARIABLES
    }
    assert not unknown, f"not fields of settings.Settings (a typo is silently ignored): {sorted(unknown)}"


def rollcall_values() -> list[tuple[str, str, str]]:
    """(where, variable, value) for every ROLLCALL_* value the deployment files set."""
    found = []
    for stage in dockerfile().stage_names:
        found += [(f"Dockerfile {stage}", k, v) for k, v in dockerfile().env(stage).items()]
    for name, spec in services().items():
        found += [
            (f"compose {name}", k, interpolate(str(v))) for k, v in (spec.get("environment") or {}).items()
        ]
    found += [("k8s ConfigMap", k, str(v)) for k, v in k8s_one("ConfigMap")["data"].items()]
    found += [("k8s worker", e["name"], str(e["value"])) for e in k8s_worker_container().get("env", [])]
    return [item for item in found if item[1].startswith("ROLLCALL_")]


def test_rollcall_values_are_valid_settings() -> None:
    values = rollcall_values()
    assert {"ROLLCALL_BROKER_URL", "ROLLCALL_DATABASE_URL", "ROLLCALL_MODEL_DIR"} <= {v[1] for v in values}
    for where, variable, value in values:
        field = variable.removeprefix("ROLLCALL_").lower()
        assert field in Settings.model_fields, f"{where}: {variable} is not a setting"
        Settings.model_validate({field: value})  # raises ValidationError with the offending value


def test_database_and_broker_urls_name_drivers_rollcall_has() -> None:
    values = {(variable, value) for _, variable, value in rollcall_values()}
    for variable, value in values:
        if variable == "ROLLCALL_DATABASE_URL":
            assert value.startswith("postgresql+psycopg://"), f"{value}: rollcall installs psycopg 3"
        if variable in ("ROLLCALL_BROKER_URL", "ROLLCALL_RESULT_BACKEND"):
            assert value.startswith("redis://"), value


# --- workers ---
def worker_command_lines() -> dict[str, list[str]]:
    """Every command line that starts a worker: Dockerfile CMDs, compose services, the k8s Deployment."""
    lines = {f"Dockerfile {t}": dockerfile_cmd(t) for t in WORKER_TARGETS}
    lines |= {
        f"compose {n}": service_command(n)
        for n in built_services()
        if n.startswith("worker") and n != "worker-io"
    }
    container = k8s_worker_container()
    lines["k8s worker-gpu"] = container["command"] + container.get("args", [])
    assert all(argv[:4] == ["celery", "-A", "tasks", "worker"] for argv in lines.values()), lines
    assert len(lines) == 5
    return lines


def io_worker_command_lines() -> dict[str, list[str]]:
    """The workers of callback deliveries: compose's worker-io, the k8s pod's io-worker container."""
    io = k8s_containers()["io-worker"]
    return {
        "compose worker-io": service_command("worker-io"),
        "k8s io-worker": io["command"] + io.get("args", []),
    }


def test_model_workers_consume_interactive_bulk_and_session_frames_and_a_threads_worker_takes_callbacks() -> (
    None
):
    """No model worker consumes the io queue: a callback receiver that hangs never holds a model slot."""
    for where, argv in worker_command_lines().items():
        queues = (option(argv, "-Q", "--queues") or "").split(",")
        assert queues == [MODEL_QUEUE, BULK_QUEUE, FRAME_QUEUE], f"{where} consumes {queues}"
    for where, argv in io_worker_command_lines().items():
        assert argv[:4] == ["celery", "-A", "tasks", "worker"], where
        assert (option(argv, "-Q", "--queues"), option(argv, "-P", "--pool")) == (IO_QUEUE, "threads"), where
    assert k8s_one("ConfigMap")["data"].get("ROLLCALL_MODEL_QUEUE", MODEL_QUEUE) == MODEL_QUEUE
    (trigger,) = k8s_one("ScaledObject")["spec"]["triggers"]
    assert trigger["metadata"]["listName"] == MODEL_QUEUE


def test_each_worker_process_has_a_metrics_port_of_its_own_or_none() -> None:
    """Issue 26: two workers given one port raced for it, and /metrics lost the model worker's series.

    In compose each worker is one process in a container of its own: model workers serve 9808 there, the
    callback worker (no rollcall_* series) serves none.
    """
    for name, spec in services().items():
        env = spec.get("environment") or {}
        command = " ".join(spec.get("command") or [])
        if " worker " not in f" {command} ":
            continue
        port = int(env.get("ROLLCALL_WORKER_METRICS_PORT", 0))
        if IO_QUEUE in command:
            assert port == 0, f"compose {name}: the callback worker serves no /metrics"
        else:
            assert port == 9808, f"compose {name}: a model worker serves /metrics"
            assert f"{name}:9808" in env["ROLLCALL_SERVICE_ENDPOINTS"], f"{name}: its /metrics is no target"


def test_stream_readers_consume_only_the_live_queue_and_are_probed_by_their_own_name() -> None:
    """A reader is a worker of the live queue alone (tasks.live): no job ever waits behind its cameras."""
    compose_reader = service_command("reader")
    (health,) = service_healthcheck("reader")
    k8s_reader = k8s_containers("reader")["reader"]
    for where, argv in {"compose reader": compose_reader, "k8s reader": k8s_reader["command"]}.items():
        assert argv[:4] == ["celery", "-A", "tasks", "worker"], where
        assert (option(argv, "-Q", "--queues"), option(argv, "-P", "--pool")) == (LIVE_QUEUE, "solo"), where
        assert option(argv, "-n", "--hostname") == "rollcall-reader@%h", where
    assert health == ["python", "-m", "tasks.health", "--node", "rollcall-reader@%h"]
    for probe in ("readinessProbe", "livenessProbe"):
        (ping,) = probe_commands(k8s_reader, probe)
        assert ping[:5] == ["celery", "-A", "tasks", "inspect", "ping"]
        assert option(ping, "-d", "--destination") == "rollcall-reader@$HOSTNAME"
    env = {entry["name"]: entry["value"] for entry in k8s_reader["env"]}
    assert env["ROLLCALL_WORKER_METRICS_PORT"] == "9808"
    sources = {next(iter(s)): next(iter(s.values()))["name"] for s in k8s_reader["envFrom"]}
    assert sources == {
        "configMapRef": k8s_one("ConfigMap")["metadata"]["name"],
        "secretRef": "rollcall-secrets",
    }
    assert "deploy" not in services()["reader"], "readers reserve no GPU"


def test_gpu_workers_own_exactly_one_gpu_and_use_the_solo_pool() -> None:
    for where, argv in worker_command_lines().items():
        expected = "solo" if "gpu" in where else "prefork"
        assert option(argv, "-P", "--pool") == expected, f"{where} should use the {expected} pool"
    assert dockerfile().env("worker-gpu")["ROLLCALL_DEVICE"] == "cuda"
    assert dockerfile().env("worker-cpu")["ROLLCALL_DEVICE"] == "cpu"

    gpu = services()["worker-gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and "gpu" in device["capabilities"]
    assert "device_ids" not in device
    assert isinstance(gpu["deploy"]["replicas"], int) and gpu["deploy"]["replicas"] >= 1
    assert "deploy" not in services()["worker-cpu"], "CPU workers reserve no GPU"

    resources = k8s_worker_container()["resources"]
    assert int(resources["limits"]["nvidia.com/gpu"]) == 1
    assert int(resources.get("requests", {}).get("nvidia.com/gpu", 1)) == 1


def test_cpu_workers_start_only_with_the_cpu_profile() -> None:
    assert services()["worker-cpu"].get("profiles") == ["cpu"]
    assert "profiles" not in services()["worker-gpu"]


def test_worker_health_checks_ping_the_worker_they_belong_to() -> None:
    def node(argv: list[str], *names: str) -> tuple[str, str]:
        value = option(argv, *names)
        assert value is not None and "@" in value, f"{argv} names no node"
        prefix, _, host = value.partition("@")
        return prefix, host

    container = k8s_worker_container()
    pairs = {f"Dockerfile {t}": (dockerfile_cmd(t), dockerfile_healthcheck(t)) for t in WORKER_TARGETS}
    pairs |= {
        f"compose {n}": (service_command(n), service_healthcheck(n)) for n in ("worker-cpu", "worker-gpu")
    }
    pairs |= {
        f"k8s {probe}": (container["command"], probe_commands(container, probe))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    for where, (command, (ping,)) in pairs.items():
        name, host = node(command, "-n", "--hostname")
        pinged, pinged_host = node(ping, "-d", "--destination")
        assert host == "%h" and pinged_host == "$HOSTNAME", f"{where}: {host!r} / {pinged_host!r}"
        assert pinged == name, f"{where}: the healthcheck pings {pinged}@…, the worker is {name}@…"


def test_the_callback_worker_and_the_readers_are_probed_by_their_own_node_names() -> None:
    """They run the worker-cpu image under other node names: the image's healthcheck (rollcall-cpu@)
    would mark them unhealthy for good, so each has its own, asking ``tasks.health`` for its node."""
    for name in ("worker-io", "reader"):
        command = service_command(name)
        node = option(command, "-n", "--hostname")
        (probe,) = service_healthcheck(name)
        assert option(probe, "--node") == node, f"compose {name}: probes {probe}, the worker is {node}"


def grace_seconds(value: str | int) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", str(value))
    assert match is not None, f"unexpected duration {value!r}"
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_stopping_a_worker_leaves_it_time_to_finish_its_job() -> None:
    for name in ("worker-cpu", "worker-gpu"):
        assert grace_seconds(services()[name]["stop_grace_period"]) > JOB_TIME_LIMIT_S, name
    pod = k8s_deployment("worker-gpu")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > JOB_TIME_LIMIT_S


# --- compose ---
def test_compose_builds_from_the_repository_with_existing_targets() -> None:
    assert set(built_services()) == {
        "migrate",
        "api",
        "worker-gpu",
        "worker-cpu",
        "worker-io",
        "reader",
        "flower",
    }
    for name, spec in built_services().items():
        build = spec["build"]
        context = (DOCKER_DIR / build["context"]).resolve()
        assert context == REPO_ROOT, f"{name} builds from {context}"
        assert (context / build["dockerfile"]).resolve() == DOCKER_DIR / "Dockerfile"
        assert build["target"] in FINAL_TARGETS, f"{name}: no target {build['target']}"
    api = services()["api"]
    assert [interpolate(p).rsplit(":", 1)[1] for p in api["ports"]] == ["8000"]


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = services()["redis"]
    command = [interpolate(c) for c in redis["command"]]
    assert option(command, "--appendonly") == "yes"
    assert any(v.split(":")[0] in compose()["volumes"] and v.endswith(":/data") for v in redis["volumes"])
    postgres = services()["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


def test_services_start_after_their_dependencies_are_healthy() -> None:
    checked = 0
    for name, spec in services().items():
        for dependency, condition in (spec.get("depends_on") or {}).items():
            if dependency in ONE_SHOT_SERVICES:  # it exits when done: waited for until it succeeded
                assert condition == {"condition": "service_completed_successfully"}, f"{name} → {dependency}"
                continue
            assert condition == {"condition": "service_healthy"}, f"{name} → {dependency}: {condition}"
            dep = services()[dependency]
            has_check = "healthcheck" in dep or (
                "build" in dep and dockerfile().inherited(dep["build"]["target"], "HEALTHCHECK")
            )
            assert has_check, f"{name} waits for {dependency}, which has no healthcheck"
            checked += 1
    assert checked >= 7


def test_the_api_starts_only_after_the_facebank_is_migrated() -> None:
    """The API never migrates (create_app opens no connection): compose runs the migration before it."""
    migrate = services()["migrate"]
    assert service_command("migrate") == ["python", "-m", "webapi.cli", "migrate"]
    assert migrate.get("restart", "no") == "no", "a one-shot: it runs once per `up`"
    assert (
        migrate["environment"]["ROLLCALL_DATABASE_URL"]
        == services()["api"]["environment"]["ROLLCALL_DATABASE_URL"]
    )
    assert services()["api"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_flower_asks_for_a_password_and_is_published_on_loopback_only() -> None:
    flower = services()["flower"]
    assert service_command("flower")[:4] == ["celery", "-A", "tasks", "flower"]
    assert REQUIRED_VARIABLE.match(flower["environment"]["FLOWER_BASIC_AUTH"]), "Flower must require a login"
    # Flower 2.2 serves /metrics without asking for the login, so its port stays off the network.
    for port in flower["ports"]:
        assert interpolate(port).startswith("127.0.0.1:"), f"Flower published beyond loopback: {port}"
    assert "ROLLCALL_DATABASE_URL" not in flower["environment"], "Flower needs no database password"


def test_no_secret_is_committed() -> None:
    for text in [*strings(compose()), *strings(k8s_documents())]:
        for match in URL_PASSWORD.finditer(text):
            assert REQUIRED_VARIABLE.match(match.group("password")), f"a password is written into {text}"
    for name, spec in services().items():
        environment = spec.get("environment") or {}
        for key, value in environment.items():
            if SECRET_NAME.search(key) or key in SECRET_SETTINGS:
                assert REQUIRED_VARIABLE.match(str(value)) or OPTIONAL_VARIABLE.match(str(value)), (
                    f"compose {name}: {key} must come from ${{{key}:?}} (or ${{{key}:-}} when optional)"
                )
        command = spec.get("command") or []
        for flag, value in zip(command, command[1:], strict=False):
            if SECRET_NAME.search(flag):
                assert REQUIRED_VARIABLE.match(value), f"compose {name}: {flag} takes a committed value"
    assert not [d for d in k8s_documents() if d["kind"] == "Secret"], "k8s Secrets are created by hand"
    for key in k8s_one("ConfigMap")["data"]:
        secret = SECRET_NAME.search(key) or key in SECRET_SETTINGS or key.endswith("_URL")
        assert not secret, f"{key} belongs in the Secret"
    for line in (DOCKER_DIR / "env.example").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and SECRET_NAME.search(key):
            assert value == "", f"env.example: {key} has a value"
    for instruction in (i for s in dockerfile().stages for i in [*s.all("ENV"), *s.all("ARG")]):
        assert not SECRET_NAME.search(instruction.args), f"Dockerfile line {instruction.line} sets a secret"


# --- Kubernetes ---
def test_k8s_worker_deployment_takes_settings_from_the_configmap_and_secret() -> None:
    deployment = k8s_deployment("worker-gpu")
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    container = k8s_worker_container()
    sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources["configMapRef"] == k8s_one("ConfigMap")["metadata"]["name"]
    assert sources["secretRef"] == "rollcall-secrets"
    pod_security = spec["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for probe in ("readinessProbe", "livenessProbe"):
        (ping,) = probe_commands(container, probe)
        assert ping[:5] == ["celery", "-A", "tasks", "inspect", "ping"]


def test_keda_scales_the_gpu_deployment_on_the_model_queue() -> None:
    scaled = k8s_one("ScaledObject")
    assert scaled["apiVersion"].startswith("keda.sh/")
    assert scaled["spec"]["scaleTargetRef"]["name"] == k8s_deployment("worker-gpu")["metadata"]["name"]
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == MODEL_QUEUE
    assert int(trigger["metadata"]["listLength"]) > 0
    auth = k8s_one("TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} == {"rollcall-secrets"}


def test_dockerignore_lets_build_inputs_through_and_keeps_the_rest_out() -> None:
    sources = [
        src
        for stage in dockerfile().stages
        for copy in stage.all("COPY")
        if "from" not in copy.flags
        for src in shlex.split(copy.args)[:-1]
    ]
    # Files bind-mounted from the build context into a RUN (constraints, the offline wheelhouse).
    text = (DOCKER_DIR / "Dockerfile").read_text(encoding="utf-8")
    sources += re.findall(r"--mount=type=bind,source=([^,\s]+),target=", text)
    assert "docker/constraints.txt" in sources and "docker/wheelhouse" in sources
    for source in sources:
        path = REPO_ROOT / source
        assert path.exists(), f"the Dockerfile copies {source}, which does not exist"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = str(file.relative_to(REPO_ROOT))
            if "__pycache__" not in relative:
                assert not dockerignore.ignored(relative, DOCKERIGNORE), (
                    f".dockerignore keeps {relative} out of the build"
                )
    for unwanted in (
        ".git/HEAD", ".venv/bin/python", "var/redis/appendonly.aof", "tests/conftest.py",
        ".pytest_cache/v/cache/nodeids", ".mypy_cache/3.11/settings.json", ".ruff_cache/CACHEDIR.TAG",
        "ml/__pycache__/weights.cpython-311.pyc", "rollcall.egg-info/PKG-INFO", "models/pnet.pt",
        "dlib_resnet_v1.dat", "var/facebank.db", ".env", "docker/.env",
    ):  # fmt: skip
        assert dockerignore.ignored(unwanted, DOCKERIGNORE), (
            f".dockerignore lets {unwanted} into the build context"
        )
