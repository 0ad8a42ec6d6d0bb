"""Read access to the current knowledge snapshot, loaded once per process and indexed by URI."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from craft.settings import Settings, get_settings
from knowledge.snapshot import Manifest, current_path, load_manifest


class SnapshotMissing(RuntimeError):
    """No knowledge snapshot yet: the message says how to build one."""


@dataclass(frozen=True)
class Concept:
    """An occupation or skill as lookups return it; labels fall back to the other language when missing."""

    uri: str
    kind: str
    pref_en: str
    pref_de: str
    desc_en: str
    desc_de: str
    skill_type: str = ""
    isco_group: str = ""

    def label(self, lang: str = "en") -> str:
        first, second = (self.pref_de, self.pref_en) if lang == "de" else (self.pref_en, self.pref_de)
        return first or second

    def description(self, lang: str = "en") -> str:
        first, second = (self.desc_de, self.desc_en) if lang == "de" else (self.desc_en, self.desc_de)
        return first or second


class KnowledgeBase:
    """Tables of one snapshot plus URI dictionaries for O(1) access on the hot path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest: Manifest = load_manifest(path)

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.path / f"{name}.parquet")

    @cached_property
    def labels(self) -> pd.DataFrame:
        return self.table("labels")

    @cached_property
    def title_hints(self) -> pd.DataFrame:
        return self.table("title_hints")

    @cached_property
    def courses(self) -> pd.DataFrame:
        return self.table("courses")

    @cached_property
    def occupations(self) -> dict[str, Concept]:
        frame = self.table("occupations")
        return {
            r.uri: Concept(
                r.uri, "occupation", r.pref_en, r.pref_de, r.desc_en, r.desc_de, isco_group=r.isco_group
            )
            for r in frame.itertuples(index=False)
        }

    @cached_property
    def skills(self) -> dict[str, Concept]:
        frame = self.table("skills")
        return {
            r.uri: Concept(
                r.uri, "skill", r.pref_en, r.pref_de, r.desc_en, r.desc_de, skill_type=r.skill_type
            )
            for r in frame.itertuples(index=False)
        }

    @cached_property
    def occupation_skills(self) -> dict[str, list[tuple[str, str]]]:
        """occupation URI -> [(skill URI, 'essential'|'optional')], essential first."""
        grouped: dict[str, list[tuple[str, str]]] = defaultdict(list)
        relations = self.table("relations").sort_values(["occupation_uri", "relation", "skill_uri"])
        for occ, skill, relation in zip(
            relations.occupation_uri, relations.skill_uri, relations.relation, strict=True
        ):
            grouped[occ].append((skill, relation))
        return dict(grouped)

    @cached_property
    def ba_codes(self) -> dict[str, list[tuple[str, str, str | None]]]:
        """ESCO occupation URI -> [(BA id, BA label, mapping relation)] for the BERUFENET/KldB bridge."""
        frame = self.table("ba_occupation_map")
        grouped: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
        if len(frame):
            for uri, ba_id, label, rel in zip(
                frame.esco_uri, frame.ba_id, frame.ba_label, frame.relation, strict=True
            ):
                grouped[uri].append((ba_id, label, rel if isinstance(rel, str) else None))
        return dict(grouped)


_cache: dict[tuple[Path, int], KnowledgeBase] = {}


def get_knowledge(settings: Settings | None = None) -> KnowledgeBase:
    """The process-wide knowledge base of the CURRENT snapshot."""
    settings = settings or get_settings()
    path = current_path(settings)
    if path is None:
        raise SnapshotMissing(
            f"No knowledge snapshot in {settings.store_dir}. Build it with `craft data build` "
            f"(reads ESCO/BA/course files from {settings.data_dir})."
        )
    key = (path, (path / "manifest.json").stat().st_mtime_ns)  # a forced rebuild rewrites the manifest
    if key not in _cache:
        _cache.clear()
        _cache[key] = KnowledgeBase(path)
    return _cache[key]
