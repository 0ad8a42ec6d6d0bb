"""Suite-wide set-up: never touch a model hub; build the real knowledge base once per session when the
shared data is available (CI sets CRAFT_DATA_DIR=../shared/data; the Makefile points the store at var/test and
samples the embedding index so the suite stays within the CI budget)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from craft.settings import Settings, get_settings


def real_data_dir() -> Path | None:
    raw = os.environ.get("CRAFT_DATA_DIR")
    path = Path(raw) if raw else None
    return path if path and (path / "esco" / "v1.1.1_en" / "occupations_en.csv").exists() else None


@pytest.fixture(scope="session")
def real_settings() -> Settings:
    """Settings over the real shared data with a built snapshot and label indexes (skips without data)."""
    if real_data_dir() is None:
        pytest.skip("real data not available (set CRAFT_DATA_DIR)")
    from knowledge.indexes import build_indexes
    from knowledge.models import prepare
    from knowledge.snapshot import build_snapshot

    get_settings.cache_clear()
    settings = get_settings()
    prepare(settings, ["multilingual-e5-small"])
    build_snapshot(settings)
    build_indexes(settings)
    return settings


@pytest.fixture(scope="session")
def enriched_settings(real_settings: Settings) -> Settings:
    """The real snapshot with course skills built (incremental: seconds when the cache is warm)."""
    from knowledge.course_skills import default_extractors, enrich_courses
    from knowledge.store import get_knowledge

    kb = get_knowledge(real_settings)
    enrich_courses(real_settings, kb, default_extractors(real_settings, kb), progress=False)
    return real_settings


@pytest.fixture(scope="session")
def agent_settings(enriched_settings: Settings) -> Settings:
    """The advisor over the real knowledge base with in-memory conversations and template explanations (the
    model-written explanations have their own tests), so dialogues run in seconds."""
    return enriched_settings.model_copy(update={"checkpoint_url": ":memory:", "explain_backend": "template"})


def _postgres_bin() -> Path | None:
    import glob
    import shutil

    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (trust auth, loopback only) for the checkpointer at scale; the Makefile
    installs Debian's `postgresql` when it is missing. Runs as `nobody` when the tests run as root."""
    import socket
    import subprocess

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql)")
    import shutil
    import tempfile

    root = Path(
        tempfile.mkdtemp(prefix="craft-pg-")
    )  # not under pytest's root-only temp dir: `nobody` runs it
    data = root / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        os.chmod(root, 0o777)
        prefix = ["runuser", "-u", "nobody", "--"]
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "craft", "--auth=trust"], **run)
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
    log = root / "server.log"
    subprocess.run(
        [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
        **run,
    )
    try:
        yield f"postgresql://craft@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], check=False
        )
        shutil.rmtree(root, ignore_errors=True)
