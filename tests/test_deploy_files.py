"""The deployment files run what the Procfile says: every Procfile process has a compose service
whose command is its line verbatim (``$$`` being compose's escape for a ``$`` the container's
shell expands), run by the Dockerfile's entrypoint as a Procfile runner runs it (through ``sh``,
with ``$PORT`` and ``${X:-n}`` from the container's environment); the image runs as a non-root
user; the compose environment is a valid configuration; workers and web have liveness checks."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.devstack import redis_argv
from orchestrator.core.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
CELERY_WORKER = ("celery", "-A", "workers.entry", "worker")
LIVENESS = "celery -A workers.entry inspect ping"
EXEC_WAIT_SECONDS = 10
# ${NAME}, ${NAME:-default} (compose and sh), $NAME (sh).
_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_]\w*)(?::-(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def procfile() -> dict[str, str]:
    """Procfile process name → its command line, exactly as written."""
    lines = PROCFILE.read_text().splitlines()
    pairs = (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in pairs}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def compose_interpolate(value: str, host_env: dict[str, str] | None = None) -> str:
    """What compose makes of a value: ``$$`` → ``$``; ``${NAME:-default}`` and ``${NAME}`` from
    the host environment (empty here, so the defaults: what a plain ``docker compose up`` gets)."""
    host = host_env or {}
    parts = value.split("$$")

    def one(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        return host.get(name) or match["default"] or ""

    return "$".join(_VARIABLE.sub(one, part) for part in parts)


def container_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: compose_interpolate(str(v)) for k, v in (service.get("environment") or {}).items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def last(instruction: str) -> str:
    values = [arg for name, arg in dockerfile_instructions() if name == instruction]
    assert values, f"the Dockerfile has no {instruction}"
    return values[-1]


@pytest.mark.parametrize("process", sorted(procfile()))
def test_every_procfile_process_has_a_service_running_its_exact_line(process):
    service = services().get(process)
    assert service is not None, f"compose.yaml has no service {process!r}"
    raw = service["command"]
    assert isinstance(raw, str), "a command string, as the Procfile writes it"
    # Every $ is escaped: compose substitutes nothing; the container's shell expands it all.
    assert "$" not in raw.replace("$$", ""), raw
    assert compose_interpolate(raw) == procfile()[process]
    assert service["build"] == "." and service["image"] == services()["web"]["image"]


@pytest.mark.parametrize("process", sorted(procfile()))
def test_the_container_expands_the_line_as_a_procfile_runner_would(process):
    """The Dockerfile's ENTRYPOINT given the compose command (split into words by compose)
    ends up running what ``sh -c '<Procfile line>'`` runs, with the service's environment."""
    service = services()[process]
    env = container_env(service)
    line = procfile()[process]
    for match in _VARIABLE.finditer(line):
        name = match["braced"] or match["bare"]
        assert match["default"] is not None or name in env, f"{process}: {name} is not set"
    entrypoint = json.loads(last("ENTRYPOINT"))
    words = shlex.split(compose_interpolate(service["command"]))
    run = [*entrypoint, "echo", *words]
    got = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    expected = subprocess.run(
        ["/bin/sh", "-c", f"echo {line}"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert got == expected
    assert "$" not in got


def test_the_web_line_binds_port_from_the_environment():
    env = container_env(services()["web"])
    entrypoint = json.loads(last("ENTRYPOINT"))
    cmd = json.loads(last("CMD"))
    got = subprocess.run(
        [*entrypoint, f"echo {cmd[0]}"], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert got[got.index("-b") + 1] == f"0.0.0.0:{env['PORT']}"


def test_the_image_runs_the_web_line_by_default_as_a_non_root_user():
    assert last("FROM") == "python:3.11-slim"
    assert json.loads(last("CMD")) == [procfile()["web"]]
    user = last("USER").split(":")[0]
    assert user not in ("", "root", "0")
    entrypoint = json.loads(last("ENTRYPOINT"))
    assert entrypoint[:2] == ["/bin/sh", "-c"] and "exec" in entrypoint[2]


def test_compose_has_redis_the_processes_and_the_simulator():
    names = set(services())
    assert {"redis", "web", "worker", "delivery", "beat", "sim", *procfile()} <= names
    assert shlex.split(services()["sim"]["command"])[:2] == ["orchestrator", "sim"]


def test_the_compose_environment_is_a_valid_configuration():
    """What API.md names, wired the same in every service of the image, and accepted by the
    config loader as it stands (the defaults of a plain ``docker compose up``)."""
    web = container_env(services()["web"])
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "PIXAZO_BASE_URL", "PIXAZO_API_KEY"):
        assert web[name], name
    settings = load_settings(web)
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.pixazo_base_url == "http://sim:8090"
    for name, service in services().items():
        if service.get("build") == ".":
            assert container_env(service) == web, name


def _node_name(command: list[str]) -> str:
    """The node name a worker command gives itself (-n), celery's default ``celery@%h``."""
    return command[command.index("-n") + 1] if "-n" in command else "celery@%h"


def test_workers_are_probed_by_pinging_their_own_node_and_web_by_healthz():
    workers = {
        name: service
        for name, service in services().items()
        if tuple(shlex.split(service.get("command", ""))[:4]) == CELERY_WORKER
    }
    assert {"worker", "delivery", *(p for p in procfile() if p in workers)} <= workers.keys()
    for name, service in workers.items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL", name
        probe = compose_interpolate(test[1])
        assert probe.startswith(LIVENESS), name
        node = _node_name(shlex.split(compose_interpolate(service["command"])))
        assert probe.split("-d ", 1)[1] == node.replace("%h", "$HOSTNAME"), name
    web_probe = " ".join(services()["web"]["healthcheck"]["test"])
    assert "/healthz" in web_probe


def test_the_entrypoint_execs_the_process_so_it_gets_the_stop_signal():
    """No shell is left between docker and the process: SIGTERM reaches gunicorn or Celery."""
    entrypoint = json.loads(last("ENTRYPOINT"))
    process = subprocess.Popen([*entrypoint, "sleep 30"])
    comm = Path(f"/proc/{process.pid}/comm")
    try:
        deadline = time.monotonic() + EXEC_WAIT_SECONDS
        while comm.read_text().strip() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.05)  # until the shell has exec'd
        assert comm.read_text().strip() == "sleep"
        process.terminate()
        assert process.wait(timeout=EXEC_WAIT_SECONDS) == -signal.SIGTERM
    finally:
        process.kill()


def test_compose_redis_keeps_job_hashes_compact():
    """A job hash has values over Redis's default 64-byte listpack limit (input, output):
    raising it keeps the hash a listpack, about half the bytes per job (make bench-memory)."""
    command = yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"]
    assert "--hash-max-listpack-value 1024" in command


def test_the_dev_stack_and_benchmarks_run_redis_with_the_production_setting(tmp_path):
    """``make bench-memory`` measures what production keeps: the stack's redis-server line
    (devstack.redis_argv) carries compose.yaml's hash-max-listpack-value."""
    command = shlex.split(yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"])
    production = command[command.index("--hash-max-listpack-value") + 1]
    argv = redis_argv(6379, tmp_path / "redis")
    assert argv[argv.index("--hash-max-listpack-value") + 1] == production
