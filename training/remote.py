"""Train a stage on another machine (a GPU without the knowledge base) and register the result here.

The GPU machine has the training libraries but neither the data nor the knowledge base, and what travels is
size-limited, so a remote run is three steps with the same code as a local one:

1. ``craft train <stage> --profile full --export DIR`` (here): builds the training data exactly as a local
   run would, and writes the job — stage, profile, config, model key, the payload ``_fit`` reads — plus the
   base model in float16 (half the bytes; training upcasts it).
2. ``python -m training.remote fit DIR OUT`` (there): the stage's ``_fit`` on the GPU, the model saved in
   float16, packed into one tar and split into ``PART_BYTES`` parts (the transfer takes few, small files).
3. ``craft train <stage> --profile full --import OUT`` (here): rebuilds the data, refuses a job whose key
   differs (other data, config or base model), joins the parts, runs the stage's ``_finish`` (validation
   needs the knowledge base) and registers the model like a local run, its manifest naming the device.
"""

from __future__ import annotations

import gzip
import importlib
import json
import pickle
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from craft.settings import Settings
from knowledge.models import MANIFEST, ModelManifest, read_manifest, resolve, write_manifest
from training.base import Profile, Stage, StageConfig, TrainingData, get_stage

JOB = "job.json"
PAYLOAD = "payload.pkl.gz"  # course texts repeat across pairs: gzip shrinks them ~5x for the transfer
BASE_DIR = "base"
FIT = "fit.json"
ARCHIVE = "model.tar"
PART_BYTES = 15 * 1024 * 1024
PART = ".part"


class RemoteJobError(RuntimeError):
    """A job or its result that does not fit this stage, data or config: the message says which."""


def _stage(name: str, module: str | None = None) -> Stage:
    """The registered stage; with ``module`` only that stage's module is imported (the GPU machine lacks
    the libraries of the others)."""
    if module:
        importlib.import_module(module)
    else:
        import training  # noqa: F401 - registers every stage
    stage = get_stage(name)
    if not stage.supports_remote:
        raise RemoteJobError(f"stage {name!r} cannot train on another machine (no _fit/_finish split)")
    return stage


def export_job(
    settings: Settings,
    stage_name: str,
    profile: Profile,
    dest: Path,
    config: StageConfig | None = None,
    *,
    console: Console | None = None,
) -> dict[str, Any]:
    """Write the job of ``stage_name`` into ``dest`` (emptied first); returns the job description."""
    console = console or Console(stderr=True)
    stage = _stage(stage_name)
    config, data, key = stage.prepare(settings, profile, config, console=console)
    base_name = getattr(config, "base_model", None)
    if not base_name:
        raise RemoteJobError(f"stage {stage_name!r} names no base model to ship with the job")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    folder, manifest = resolve(settings, base_name)
    _copy_half(folder, dest / BASE_DIR / manifest.name)
    write_manifest(dest / BASE_DIR / manifest.name, manifest)
    payload = TrainingData(hash=data.hash, summary=data.summary, payload=stage._remote_payload(data))
    (dest / PAYLOAD).write_bytes(gzip.compress(pickle.dumps(payload), compresslevel=6))
    job = {
        "stage": stage_name,
        "module": type(stage).__module__,
        "profile": profile,
        "key": key,
        "config": json.loads(config.fingerprint()),
        "base_model": manifest.name,
        "data_hash": data.hash,
    }
    (dest / JOB).write_text(json.dumps(job, indent=2))
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    console.print(f"{stage_name}: job {key} ({profile}) → {dest} ({size / 2**20:.1f} MiB)")
    return job


def _copy_half(source: Path, target: Path) -> None:
    """Copy a model folder with its float32 safetensors weights stored as float16."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(MANIFEST, "*.onnx", "onnx"))
    _halve_weights(target)


def fit(job_dir: Path, out: Path, *, console: Console | None = None) -> dict[str, Any]:
    """Run the job's ``_fit`` (on the GPU machine) into ``out``; weights in float16, big files in parts."""
    console = console or Console(stderr=True)
    job = json.loads((job_dir / JOB).read_text())
    stage = _stage(job["stage"], job["module"])
    config = stage.config_class.model_validate(job["config"])
    data: TrainingData = pickle.loads(gzip.decompress((job_dir / PAYLOAD).read_bytes()))
    settings = Settings(model_dir=job_dir / BASE_DIR, cache_dir=job_dir / "work")  # checkpoints stay there
    out.mkdir(parents=True, exist_ok=True)
    model_out = out / "model"
    shutil.rmtree(model_out, ignore_errors=True)
    started = time.perf_counter()
    stats = stage._fit(
        settings, config, data, work=settings.cache_dir / job["key"], out=model_out, console=console
    )
    stats["fit_seconds"] = round(time.perf_counter() - started, 1)
    _halve_weights(model_out)
    _pack(model_out, out / ARCHIVE)
    (out / FIT).write_text(json.dumps({"job": job, "stats": stats}, indent=2))
    console.print(f"{job['stage']}: fitted in {stats['fit_seconds']:.0f}s → {out}")
    return stats


def _halve_weights(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    for weights in folder.rglob("*.safetensors"):
        tensors = load_file(str(weights))
        half = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(half, str(weights), metadata={"format": "pt"})


def _pack(folder: Path, archive: Path) -> None:
    """One tar of the model folder, split into parts (the transfer takes few files of limited size)."""
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname="model")
    shutil.rmtree(folder)
    _split(archive.parent)


def _unpack(fetched: Path, target: Path) -> None:
    """Join the parts of ``fetched``'s archive and extract the model folder into ``target``."""
    work = target.with_name(target.name + ".parts")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for part in fetched.glob(f"{ARCHIVE}*"):
        shutil.copyfile(part, work / part.name)
    _join(work)
    if not (work / ARCHIVE).is_file():
        raise RemoteJobError(f"{fetched} holds no {ARCHIVE} (or its parts)")
    with tarfile.open(work / ARCHIVE) as tar:
        tar.extractall(work, filter="data")
    shutil.move(str(work / "model"), target)
    shutil.rmtree(work)


def _split(folder: Path) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > PART_BYTES):
        raw = path.read_bytes()
        for index, start in enumerate(range(0, len(raw), PART_BYTES)):
            path.with_name(f"{path.name}{PART}{index:02d}").write_bytes(raw[start : start + PART_BYTES])
        path.unlink()


def _join(folder: Path) -> None:
    parts: dict[Path, list[Path]] = {}
    for part in folder.rglob(f"*{PART}[0-9][0-9]"):
        parts.setdefault(part.with_name(part.name[: -len(PART) - 2]), []).append(part)
    for whole, pieces in parts.items():
        with whole.open("wb") as handle:
            for piece in sorted(pieces):
                handle.write(piece.read_bytes())


def import_result(
    settings: Settings,
    fetched: Path,
    config: StageConfig | None = None,
    *,
    console: Console | None = None,
) -> ModelManifest:
    """Validate and register the model a remote ``fit`` wrote into ``fetched`` (read-only is fine)."""
    console = console or Console(stderr=True)
    if not (fetched / FIT).is_file():
        raise RemoteJobError(f"{fetched} holds no {FIT}: not the output of `python -m training.remote fit`")
    result = json.loads((fetched / FIT).read_text())
    job, stats = result["job"], result["stats"]
    stage = _stage(job["stage"])
    if config is not None and json.loads(config.fingerprint()) != job["config"]:
        raise RemoteJobError(
            f"the remote model was trained with another config ({job['profile']} profile): import it without "
            "--config, or with the config file it was exported with"
        )
    config = config or stage.config_class.model_validate(job["config"])
    config, data, key = stage.prepare(settings, job["profile"], config, console=console)
    if key != job["key"]:
        raise RemoteJobError(
            f"the remote model was trained for key {job['key']}, but this data/config/base gives {key}: "
            "export the job again"
        )
    name = f"{stage.name}-{key}"
    if (settings.model_dir / name / MANIFEST).exists():
        console.print(f"[green]✓[/green] {name} already registered; not importing again")
        return read_manifest(settings.model_dir / name)
    staging = settings.model_dir / f"{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    _unpack(fetched, staging)
    started = time.perf_counter()
    trained = stage._finish(settings, config, data, out=staging, stats=stats, console=console)
    return stage.register_model(
        settings,
        job["profile"],
        config,
        data,
        key,
        trained,
        staging,
        seconds=stats.get("fit_seconds", 0.0) + time.perf_counter() - started,
        trained_on=str(stats.get("device", "another machine")),
    )


def main(argv: list[str]) -> int:
    """``python -m training.remote fit JOB_DIR OUT_DIR`` on the machine that trains."""
    if len(argv) != 3 or argv[0] != "fit":
        print("usage: python -m training.remote fit JOB_DIR OUT_DIR", file=sys.stderr)
        return 2
    fit(Path(argv[1]), Path(argv[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
