"""Training elsewhere: export a job, fit it as the GPU machine would (here on the CPU, tiny profile), import
it — the registered model equals a local run's key, keeps its validation, and mismatches are refused."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from safetensors import safe_open

from craft.settings import Settings
from knowledge.models import resolve
from training import get_stage
from training.base import StageConfig
from training.remote import (
    ARCHIVE,
    BASE_DIR,
    FIT,
    JOB,
    PART,
    RemoteJobError,
    _join,
    _split,
    export_job,
    fit,
    import_result,
)
from training.reranker import RerankerConfig

pytestmark = [pytest.mark.data, pytest.mark.slow]


def _quiet() -> Console:
    return Console(file=io.StringIO())


def test_split_and_join_restore_the_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.remote

    monkeypatch.setattr(training.remote, "PART_BYTES", 10)
    (tmp_path / "big.bin").write_bytes(bytes(range(35)))
    (tmp_path / "small.txt").write_text("ok")
    _split(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"big.bin{PART}0{i}" for i in range(4)] + [
        "small.txt"
    ]
    _join(tmp_path)
    assert (tmp_path / "big.bin").read_bytes() == bytes(range(35))


def test_export_fit_import_registers_the_same_model_key(
    isolate: Callable[[Path], Settings], tmp_path: Path
) -> None:
    settings = isolate(tmp_path / "here")
    job_dir, out = tmp_path / "job", tmp_path / "out"
    job = export_job(settings, "reranker", "tiny", job_dir, console=_quiet())
    assert json.loads((job_dir / JOB).read_text())["key"] == job["key"]
    base = job_dir / BASE_DIR / "all-MiniLM-L6-v2"
    weights = next(base.rglob("*.safetensors"))
    with safe_open(str(weights), "pt") as handle:  # shipped in float16: half the bytes
        names = [k for k in handle.keys() if "weight" in k]  # noqa: SIM118 - safe_open is not a mapping
        assert {str(handle.get_tensor(k).dtype) for k in names} == {"torch.float16"}

    stats = fit(job_dir, out, console=_quiet())
    assert stats["train_steps"] > 0 and (out / FIT).is_file()
    names = [p.name for p in out.iterdir()]
    assert FIT in names and all(n.startswith(ARCHIVE) for n in names if n != FIT)  # two kinds of file only

    manifest = import_result(settings, out, console=_quiet())
    _, local_key = get_stage("reranker").prepare(settings, "tiny", console=_quiet())[1:]
    assert manifest.name == f"reranker-{job['key']}" and job["key"] == local_key
    assert "on cpu" in manifest.source and manifest.config["profile"] == "tiny"
    assert 0.0 <= manifest.metrics["val_ndcg@10"] <= 1.0 and "blend_alpha" in manifest.metrics
    folder, found = resolve(settings, "reranker")
    assert found.name == manifest.name and not list(folder.rglob(f"*{PART}*"))
    assert import_result(settings, out, console=_quiet()).name == manifest.name  # idempotent

    other: StageConfig = RerankerConfig.for_profile("tiny", {"seed": 7})
    with pytest.raises(RemoteJobError, match="another config"):
        import_result(settings, out, other, console=_quiet())
    with pytest.raises(RemoteJobError, match="holds no"):
        import_result(settings, tmp_path, console=_quiet())
