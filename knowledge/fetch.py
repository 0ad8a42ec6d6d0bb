"""``craft data fetch``: download a public source into ``data_dir`` in the layout the loaders read.

Each fetch keeps a small JSON state file next to its output recording finished pages, so an interrupted
run continues where it stopped; finished pages are never requested again. Offline it fails at once with
a :class:`SourceUnavailable` that says which files to put where instead.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from tqdm import tqdm

from craft.settings import Settings
from knowledge.clients.berufenet import BerufenetClient
from knowledge.clients.esco_api import (
    DEFAULT_VERSION,
    EscoClient,
    download_hint,
    esco_dir_name,
    is_occupation,
    is_skill,
    occupation_row,
    relation_rows,
    skill_row,
    write_esco_csv,
)
from knowledge.clients.http import ApiError, SourceUnavailable, write_atomic
from knowledge.clients.weiterbildungssuche import WbQuery, WeiterbildungClient

Source = Literal["esco", "berufenet", "weiterbildung"]
STATE_FILE = ".fetch_state.json"


class FetchResult(BaseModel):
    """What a fetch wrote; ``requests`` counts pages/records actually downloaded in this run."""

    source: Source
    target: Path
    files: list[Path] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    requests: int = 0
    resumed_pages: int = Field(0, description="Pages a previous, interrupted run had already finished.")
    failed: list[str] = Field(
        default_factory=list, description="Records that could not be read (kept going)."
    )

    def summary(self) -> str:
        counts = ", ".join(f"{k}: {v:,}" for k, v in self.counts.items())
        text = f"{self.source}: {counts} → {self.target}"
        if self.failed:
            text += f" ({len(self.failed)} failed)"
        return text


class FetchState:
    """Progress of one fetch; a different query (``key``) starts over instead of mixing results."""

    def __init__(self, path: Path, key: Mapping[str, Any]) -> None:
        self.path = path
        self.key = json.loads(json.dumps(dict(key), default=str))
        data: dict[str, Any] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                data = {}
        if data.get("key") != self.key:
            data = {"key": self.key}
        self.data = data

    def done(self, kind: str) -> set[int]:
        return set(self.data.get("done", {}).get(kind, []))

    def mark(self, kind: str, number: int) -> None:
        done = self.data.setdefault("done", {}).setdefault(kind, [])
        if number not in done:
            done.append(number)
        self.save()

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def set(self, name: str, value: Any) -> None:
        self.data[name] = value
        self.save()

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.data, ensure_ascii=False, indent=1))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _first_gap(done: set[int]) -> int:
    number = 0
    while number in done:
        number += 1
    return number


def _offline_hint(source: Source, settings: Settings, options: Mapping[str, Any]) -> str:
    if source == "esco":
        return download_hint(
            settings, str(options.get("version", DEFAULT_VERSION)), str(options.get("language", "en"))
        )
    if source == "berufenet":
        return BerufenetClient.offline_hint.replace("<data_dir>", str(settings.data_dir))
    return WeiterbildungClient.offline_hint.replace("<data_dir>", str(settings.data_dir))


def fetch(
    source: Source,
    settings: Settings,
    *,
    progress: bool = True,
    client_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> FetchResult:
    """Download ``source`` into ``settings.data_dir``.

    Options — esco: ``version`` ("1.2.0"), ``language`` ("en"), ``limit`` (100 per page), ``max_pages``;
    berufenet: ``suchwoerter`` ("*"), ``buchstabe``, ``berufecluster``, ``bg``, ``details`` (True),
    ``max_pages``, ``max_details``; weiterbildung: any :class:`WbQuery` field plus ``size``, ``max_pages``.
    ``client_options`` go to the API client (tests pass ``transport``, ``sleep``, ``use_cache``).
    """
    if settings.offline:
        raise SourceUnavailable(
            source, "offline mode is on (CRAFT_OFFLINE)", _offline_hint(source, settings, options)
        )
    kwargs = dict(client_options or {})
    if source == "esco":
        return _fetch_esco(settings, kwargs, progress=progress, **options)
    if source == "berufenet":
        return _fetch_berufenet(settings, kwargs, progress=progress, **options)
    if source == "weiterbildung":
        return _fetch_weiterbildung(settings, kwargs, progress=progress, **options)
    raise ValueError(f"unknown source {source!r}; expected esco, berufenet or weiterbildung")


# --- ESCO ------------------------------------------------------------------------------------
def _fetch_esco(
    settings: Settings,
    client_options: dict[str, Any],
    *,
    progress: bool,
    version: str = DEFAULT_VERSION,
    language: str = "en",
    limit: int = 100,
    max_pages: int | None = None,
) -> FetchResult:
    target = settings.data_dir / "esco" / esco_dir_name(version, language)
    parts = target / ".fetch"
    state = FetchState(target / STATE_FILE, {"version": version, "language": language, "limit": limit})
    result = FetchResult(source="esco", target=target)
    with EscoClient(settings, version=version, **client_options) as client:
        for kind in ("occupation", "skill"):
            _esco_kind(client, kind, state, parts, result, language, limit, max_pages, progress)
        occupations, skills, relations = [], [], []
        for path in sorted(parts.glob("*.json")):
            part = json.loads(path.read_text(encoding="utf-8"))
            bucket = occupations if path.name.startswith("occupation") else skills
            bucket.extend(part["rows"])
            relations.extend(part.get("relations", []))
            result.failed.extend(part.get("failed", []))
        written = write_esco_csv(
            target,
            version=version,
            lang=language,
            occupations=occupations,
            skills=skills,
            relations=relations,
        )
    for kind, (path, rows) in written.items():
        result.files.append(path)
        result.counts[kind] = rows
    if max_pages is None:  # a complete download needs no resume data any more
        shutil.rmtree(parts, ignore_errors=True)
        state.clear()
    return result


def _esco_kind(
    client: EscoClient,
    kind: Literal["occupation", "skill"],
    state: FetchState,
    parts: Path,
    result: FetchResult,
    language: str,
    limit: int,
    max_pages: int | None,
    progress: bool,
) -> None:
    done = state.done(kind)
    result.resumed_pages += len(done)
    if state.get(f"{kind}_complete"):
        return
    start = _first_gap(done)
    total_pages = state.get(f"{kind}_pages")
    bar = tqdm(total=total_pages, initial=start, desc=f"ESCO {kind}s", unit="page", disable=not progress)
    number, seen = start, 0
    try:
        while max_pages is None or seen < max_pages:
            try:
                page = client.search(type=kind, language=language, offset=number, limit=limit, full=True)
                results, failed = page.results, []
            except ApiError as exc:
                total = state.get(f"{kind}_total")
                if exc.status < 500 or total is None:
                    raise
                # Some records break the full view of a page; read that page record by record.
                results, failed = _esco_records_one_by_one(client, kind, language, number, limit, total)
                page = None
            if page is not None:
                total = page.total
                if state.get(f"{kind}_total") != total:
                    state.set(f"{kind}_total", total)
                    state.set(f"{kind}_pages", -(-total // limit))
                    bar.total = -(-total // limit)
            seen += 1
            result.requests += 1
            _write_esco_part(parts / f"{kind}_{number:05d}.json", kind, results, language, failed)
            state.mark(kind, number)
            bar.update(1)
            total = state.get(f"{kind}_total") or 0
            if (not results and not failed) or (number + 1) * limit >= total:
                state.set(f"{kind}_complete", True)
                return
            number += 1
    finally:
        bar.close()


def _esco_records_one_by_one(
    client: EscoClient,
    kind: Literal["occupation", "skill"],
    language: str,
    number: int,
    limit: int,
    total: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    for index in range(number * limit, min((number + 1) * limit, total)):
        try:
            results.extend(
                client.search(type=kind, language=language, offset=index, limit=1, full=True).results
            )
        except ApiError as exc:
            failed.append(f"{kind} #{index}: HTTP {exc.status}")
    return results, failed


def _write_esco_part(
    path: Path, kind: str, results: list[dict[str, Any]], language: str, failed: list[str]
) -> None:
    if kind == "occupation":
        chosen = [r for r in results if is_occupation(r)]
        rows = [occupation_row(r, language) for r in chosen]
        relations = [rel for r in chosen for rel in relation_rows(r)]
    else:
        rows = [skill_row(r, language) for r in results if is_skill(r)]
        relations = []
    write_atomic(
        path, json.dumps({"rows": rows, "relations": relations, "failed": failed}, ensure_ascii=False)
    )


# --- BERUFENET -------------------------------------------------------------------------------
def _fetch_berufenet(
    settings: Settings,
    client_options: dict[str, Any],
    *,
    progress: bool,
    suchwoerter: str | None = "*",
    buchstabe: str | None = None,
    berufecluster: str | list[str] | None = None,
    bg: str | int | list[str | int] | None = None,
    details: bool = True,
    max_pages: int | None = None,
    max_details: int | None = None,
) -> FetchResult:
    target = settings.data_dir / "berufenet"
    parts = target / ".fetch"
    filters = {"suchwoerter": suchwoerter, "buchstabe": buchstabe, "berufecluster": berufecluster, "bg": bg}
    state = FetchState(target / STATE_FILE, filters)
    result = FetchResult(source="berufenet", target=target)
    with BerufenetClient(settings, **client_options) as client:
        done = state.done("list")
        result.resumed_pages = len(done)
        if not state.get("list_complete"):
            bar = tqdm(total=state.get("list_pages"), initial=len(done), desc="BERUFENET list", unit="page",
                       disable=not progress)  # fmt: skip
            try:
                for number, _raw, page in client.iter_pages(
                    start_page=_first_gap(done), max_pages=max_pages, **filters
                ):
                    if page.page.total_pages and state.get("list_pages") != page.page.total_pages:
                        state.set("list_pages", page.page.total_pages)
                        bar.total = page.page.total_pages
                    items = [item.model_dump(by_alias=True, mode="json") for item in page.items]
                    write_atomic(parts / f"list_{number:05d}.json", json.dumps(items, ensure_ascii=False))
                    state.mark("list", number)
                    result.requests += 1
                    bar.update(1)
                    if not page.items or not page.has_next:
                        state.set("list_complete", True)
            finally:
                bar.close()
        entries: dict[int, dict[str, Any]] = {}
        for path in sorted(parts.glob("list_*.json")):
            for item in json.loads(path.read_text(encoding="utf-8")):
                entries.setdefault(int(item["id"]), item)
        listing = target / "berufe.jsonl"
        write_atomic(listing, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries.values()))
        result.files.append(listing)
        result.counts["berufe"] = len(entries)
        if details:
            _berufenet_details(client, target / "details", list(entries), result, max_details, progress)
    if state.get("list_complete") and max_details is None:
        shutil.rmtree(parts, ignore_errors=True)
        state.clear()
    return result


def _berufenet_details(
    client: BerufenetClient,
    folder: Path,
    ids: list[int],
    result: FetchResult,
    max_details: int | None,
    progress: bool,
) -> None:
    """Each detail is its own file, so the file itself is the resume marker."""
    todo = [i for i in ids if not (folder / f"{i}.json").exists()]
    if max_details is not None:
        todo = todo[:max_details]
    for beruf_id in tqdm(todo, desc="BERUFENET details", unit="beruf", disable=not progress):
        try:
            payload = client.get_raw(beruf_id)
        except ApiError as exc:
            if exc.status >= 500 or exc.status == 429:
                raise
            result.failed.append(f"beruf {beruf_id}: HTTP {exc.status}")
            continue
        write_atomic(folder / f"{beruf_id}.json", json.dumps(payload, ensure_ascii=False))
        result.requests += 1
    written = sorted(folder.glob("*.json")) if folder.exists() else []
    result.counts["details"] = len(written)
    if written:
        result.files.append(folder)


# --- Weiterbildungssuche ---------------------------------------------------------------------
def _fetch_weiterbildung(
    settings: Settings,
    client_options: dict[str, Any],
    *,
    progress: bool,
    size: int | None = None,
    max_pages: int | None = None,
    **filters: Any,
) -> FetchResult:
    query = WbQuery(**filters)
    target = settings.data_dir / settings.courses_dir
    stem = f"weiterbildungssuche_{query.slug()}"
    state = FetchState(target / f".{stem}.state.json", {**query.to_params(), "size": size})
    result = FetchResult(source="weiterbildung", target=target)
    done = {n for n in state.done("pages") if (target / f"{stem}_p{n:04d}.json").exists()}
    result.resumed_pages = len(done)
    if not state.get("complete"):
        bar = tqdm(total=state.get("pages"), initial=len(done), desc="Weiterbildungssuche", unit="page",
                   disable=not progress)  # fmt: skip
        try:
            with WeiterbildungClient(settings, **client_options) as client:
                for number, raw, page in client.iter_pages(
                    query, start_page=_first_gap(done), max_pages=max_pages, size=size
                ):
                    if page.page.total_pages and state.get("pages") != page.page.total_pages:
                        state.set("pages", page.page.total_pages)
                        bar.total = page.page.total_pages
                    write_atomic(target / f"{stem}_p{number:04d}.json", json.dumps(raw, ensure_ascii=False))
                    state.mark("pages", number)
                    result.requests += 1
                    bar.update(1)
                    if not page.termine or not page.has_next:
                        state.set("complete", True)
        finally:
            bar.close()
    if state.get("complete"):
        state.clear()
    files = sorted(target.glob(f"{stem}_p*.json"))
    termine = 0
    for path in files:
        termine += len(
            (json.loads(path.read_text(encoding="utf-8")).get("_embedded") or {}).get("termine") or []
        )
    result.files = files
    result.counts = {"pages": len(files), "termine": termine}
    return result
