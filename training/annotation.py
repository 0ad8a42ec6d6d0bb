"""Hand annotation of skill mentions: export course texts for annotators, import what they send back.

``export_for_annotation`` samples described courses per catalog (a fraction of each source, seeded), pre-
annotates them with the weak labels the tagger is trained on and writes Prodigy-style JSONL tasks
(``text``, ``tokens``, ``spans``, ``meta``) split over N files, one per annotator or session — the way the
original CRAFT prepared its Prodigy sessions. Label Studio and doccano import the same JSONL (``text`` plus
extra keys), so one export serves all three tools.

``read_annotations`` reads the exports of Prodigy (``db-out`` JSONL: ``spans`` + ``answer``), Label Studio
(the JSON export, a list of tasks with ``annotations[].result[].value``; JSON or JSONL) and doccano (JSONL
with ``label: [[start, end, label]]`` or ``entities: [{start_offset, end_offset, label}]``) into one
``Annotation`` type. Rejected / ignored / cancelled / unannotated records are counted, malformed ones are
reported with their line (or task) number — never silently dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings
from knowledge.ner_extractor import word_spans
from training.weak_labels import CatalogText, WeakLabeler

Format = Literal["prodigy", "label-studio", "doccano"]
SKILL = "SKILL"
EXPORT_SUMMARY = "export.json"


class AnnotationError(ValueError):
    """An annotation file that cannot be used as it is; the message lists the problems by line."""


class AnnotatedSpan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(ge=0)
    end: int = Field(gt=0)
    label: str


class Annotation(BaseModel):
    """One accepted, hand-annotated text, whatever tool it came from."""

    model_config = ConfigDict(extra="forbid")

    text: str
    spans: list[AnnotatedSpan] = Field(default_factory=list)
    format: Format
    line: int = Field(description="Line (JSONL) or task number (JSON list), 1-based.")
    course_id: str | None = None
    source: str | None = None

    def skill_spans(self) -> list[tuple[int, int]]:
        """Character spans labeled SKILL (case-insensitive); other labels are not the tagger's."""
        return sorted((s.start, s.end) for s in self.spans if s.label.upper() == SKILL)


class AnnotationIssue(BaseModel):
    line: int
    message: str


class AnnotationImport(BaseModel):
    """What one file held: accepted annotations, skipped records by reason, malformed records by line."""

    path: str
    annotations: list[Annotation] = Field(default_factory=list)
    skipped: dict[str, int] = Field(default_factory=dict)
    issues: list[AnnotationIssue] = Field(default_factory=list)

    @property
    def formats(self) -> dict[str, int]:
        return dict(Counter(a.format for a in self.annotations))

    def report(self, limit: int = 20) -> str:
        lines = [
            f"{self.path}: {len(self.annotations)} annotation(s) "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.formats.items())) or 'none'}), "
            f"skipped {dict(sorted(self.skipped.items())) or 0}, {len(self.issues)} malformed record(s)"
        ]
        lines += [f"  line {i.line}: {i.message}" for i in self.issues[:limit]]
        if len(self.issues) > limit:
            lines.append(f"  … and {len(self.issues) - limit} more")
        return "\n".join(lines)

    def raise_for_issues(self) -> None:
        if self.issues:
            raise AnnotationError(self.report())


class _Malformed(ValueError):
    pass


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


# --- import ----------------------------------------------------------------------------------------------


def read_annotations(path: Path) -> AnnotationImport:
    """Read a Prodigy / Label Studio / doccano export (format detected per record)."""
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} not found")
    result = AnnotationImport(path=str(path))
    skipped: Counter[str] = Counter()
    for line, record in _records(path, result):
        try:
            result.annotations.append(_parse(record, line))
        except _Skip as skip:
            skipped[skip.reason] += 1
        except _Malformed as error:
            result.issues.append(AnnotationIssue(line=line, message=str(error)))
    result.skipped = dict(skipped)
    return result


def _records(path: Path, result: AnnotationImport) -> list[tuple[int, Any]]:
    """(line or task number, decoded JSON) for a JSON list file or a JSONL file; bad JSON is an issue."""
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        try:
            tasks = json.loads(text)
        except json.JSONDecodeError as error:
            result.issues.append(AnnotationIssue(line=error.lineno, message=f"invalid JSON: {error.msg}"))
            return []
        return list(enumerate(tasks, start=1))
    out: list[tuple[int, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            out.append((number, json.loads(raw)))
        except json.JSONDecodeError as error:
            result.issues.append(AnnotationIssue(line=number, message=f"invalid JSON: {error.msg}"))
    return out


def _parse(record: Any, line: int) -> Annotation:
    if not isinstance(record, dict):
        raise _Malformed(f"expected a JSON object, got {type(record).__name__}")
    if isinstance(record.get("data"), dict):
        return _label_studio(record, line)
    if "answer" in record or "spans" in record:
        return _prodigy(record, line)
    if "label" in record or "entities" in record:
        return _doccano(record, line)
    raise _Malformed(
        "unrecognized record: expected Prodigy (text, spans, answer), Label Studio (data, annotations) "
        f"or doccano (text, label | entities); keys: {sorted(record)[:8]}"
    )


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Malformed(f"{where} must be a non-empty string")
    return value


def _span(text: str, start: Any, end: Any, label: Any, quoted: Any = None) -> AnnotatedSpan:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise _Malformed(f"span offsets must be integers, got start={start!r} end={end!r}")
    if not 0 <= start < end <= len(text):
        raise _Malformed(f"span [{start}, {end}) is outside the text (length {len(text)}) or empty")
    if not isinstance(label, str) or not label.strip():
        raise _Malformed(f"span [{start}, {end}) has no label")
    if isinstance(quoted, str) and quoted != text[start:end]:
        raise _Malformed(f"span [{start}, {end}) says {quoted!r} but the text there is {text[start:end]!r}")
    return AnnotatedSpan(start=start, end=end, label=label.strip())


def _meta(*holders: Any) -> tuple[str | None, str | None]:
    course_id = source = None
    for holder in holders:
        if isinstance(holder, dict):
            course_id = course_id or holder.get("course_id")
            source = source or holder.get("source")
    return (str(course_id) if course_id else None, str(source) if source else None)


def _prodigy(record: dict[str, Any], line: int) -> Annotation:
    answer = record.get("answer")
    if answer is None:
        raise _Malformed("Prodigy record without 'answer' (an annotation task, not an annotated export?)")
    if answer in ("reject", "ignore"):
        raise _Skip(f"prodigy {answer}")
    if answer != "accept":
        raise _Malformed(f"Prodigy answer must be accept, reject or ignore, got {answer!r}")
    text = _text(record.get("text"), "'text'")
    spans = record.get("spans", [])
    if not isinstance(spans, list) or not all(isinstance(s, dict) for s in spans):
        raise _Malformed("'spans' must be a list of objects")
    course_id, source = _meta(record.get("meta"), record)
    return Annotation(
        text=text,
        spans=[_span(text, s.get("start"), s.get("end"), s.get("label")) for s in spans],
        format="prodigy",
        line=line,
        course_id=course_id,
        source=source,
    )


def _label_studio(record: dict[str, Any], line: int) -> Annotation:
    data = record["data"]
    text = _text(data.get("text"), "'data.text'")
    annotations = record.get("annotations", record.get("completions"))
    if not annotations:
        raise _Skip("label-studio unannotated")
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise _Malformed("'annotations' must be a list of objects")
    done = [a for a in annotations if not a.get("was_cancelled")]
    if not done:
        raise _Skip("label-studio cancelled")
    results = done[-1].get("result", [])  # the latest submitted annotation
    if not isinstance(results, list):
        raise _Malformed("'annotations[].result' must be a list")
    spans = []
    for item in results:
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, dict) or "labels" not in value:
            continue  # relations, choices, text areas: not span labels
        labels = value["labels"]
        if not isinstance(labels, list) or not labels:
            raise _Malformed("a labels result needs a non-empty 'labels' list")
        spans += [_span(text, value.get("start"), value.get("end"), lab, value.get("text")) for lab in labels]
    course_id, source = _meta(data, data.get("meta"))
    return Annotation(
        text=text, spans=spans, format="label-studio", line=line, course_id=course_id, source=source
    )


def _doccano(record: dict[str, Any], line: int) -> Annotation:
    text = _text(record.get("text"), "'text'")
    spans = []
    if "entities" in record:
        entities = record["entities"]
        if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
            raise _Malformed("'entities' must be a list of objects")
        spans = [_span(text, e.get("start_offset"), e.get("end_offset"), e.get("label")) for e in entities]
    else:
        labels = record["label"]
        if not isinstance(labels, list) or not all(isinstance(x, list) and len(x) == 3 for x in labels):
            raise _Malformed("'label' must be a list of [start, end, label] triples")
        spans = [_span(text, s, e, lab) for s, e, lab in labels]
    course_id, source = _meta(record.get("meta"), record)
    return Annotation(text=text, spans=spans, format="doccano", line=line, course_id=course_id, source=source)


# --- export ----------------------------------------------------------------------------------------------


class ExportSummary(BaseModel):
    """What ``export_for_annotation`` wrote (also saved as ``export.json`` beside the task files)."""

    files: list[str]
    tasks_per_file: list[int]
    courses_per_source: dict[str, int]
    fractions: dict[str, float]
    seed: int
    pre_annotated_spans: int
    generic_one_word_labels: dict[str, float]


def _clip(text: str, max_chars: int) -> str:
    """At most ``max_chars`` characters, cut at a word boundary."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars)
    return text[: cut if cut > 0 else max_chars].rstrip()


def annotation_task(item: CatalogText, labeler: WeakLabeler, *, max_chars: int = 3000) -> dict[str, Any]:
    """One Prodigy-style task: title and description as one text, tokens, weak spans as pre-annotation."""
    title = item.title.strip()
    body = _clip(item.text.strip(), max(0, max_chars - len(title) - 2))
    text = f"{title}\n\n{body}" if title else body
    offset = len(title) + 2 if title else 0
    found = [(s, e) for s, e, _ in labeler.spans(title, "title")] if title else []
    found += [(s + offset, e + offset) for s, e, _ in labeler.spans(body, "text")]
    words = word_spans(text)
    index = {start: i for i, (start, _) in enumerate(words)}
    ends = {end: i for i, (_, end) in enumerate(words)}
    tokens = [
        {"text": text[s:e], "start": s, "end": e, "id": i, "ws": e < len(text) and text[e].isspace()}
        for i, (s, e) in enumerate(words)
    ]
    spans = [
        {"start": s, "end": e, "token_start": index[s], "token_end": ends[e], "label": SKILL}
        for s, e in found
        if s in index and e in ends
    ]
    meta = {"course_id": item.course_id, "source": item.source, "lang": item.lang, "title": title}
    return {"text": text, "tokens": tokens, "spans": spans, "meta": meta}


def export_for_annotation(
    settings: Settings,
    fractions: Mapping[str, float],
    n_files: int,
    out_dir: Path,
    seed: int = 42,
    *,
    max_chars: int = 3000,
    max_one_word_df: float = 0.05,
    languages: tuple[str, ...] = ("en", "de"),
) -> ExportSummary:
    """Sample ``fractions[source]`` of each catalog's described courses, pre-annotate them with the weak
    labels and write them, shuffled, round-robin into ``n_files`` JSONL files under ``out_dir``."""
    from knowledge.course_skills import PhraseExtractor
    from knowledge.store import get_knowledge
    from training.weak_labels import capitalized_norms, catalog_texts

    if n_files < 1:
        raise ValueError(f"n_files must be ≥ 1, got {n_files}")
    if not fractions:
        raise ValueError("fractions is empty: give at least one source=fraction")
    kb = get_knowledge(settings)
    texts = catalog_texts(kb, languages)
    by_source: dict[str, list[CatalogText]] = {}
    for item in texts:
        by_source.setdefault(item.source, []).append(item)
    unknown = sorted(set(fractions) - set(by_source))
    if unknown:
        raise ValueError(
            f"unknown or undescribed source(s) {', '.join(map(repr, unknown))}; "
            f"described sources: {', '.join(f'{s} ({len(v)})' for s, v in sorted(by_source.items()))}"
        )
    bad = {s: f for s, f in fractions.items() if not 0 < f <= 1}
    if bad:
        raise ValueError(f"fractions must be in (0, 1]: {bad}")
    rng = np.random.default_rng(seed)
    chosen: list[CatalogText] = []
    counts: dict[str, int] = {}
    for source in sorted(fractions):
        pool = by_source[source]
        n = max(1, round(fractions[source] * len(pool)))
        picked = sorted(rng.choice(len(pool), size=n, replace=False).tolist())
        chosen += [pool[i] for i in picked]
        counts[source] = n
    if n_files > len(chosen):
        raise ValueError(f"{n_files} files for {len(chosen)} sampled courses: some files would be empty")
    labeler = WeakLabeler.fit(
        PhraseExtractor.from_kb(kb),
        texts,
        max_one_word_df=max_one_word_df,
        names=capitalized_norms(kb.labels),
    )
    tasks = [annotation_task(item, labeler, max_chars=max_chars) for item in chosen]
    order = rng.permutation(len(tasks)).tolist()
    out_dir.mkdir(parents=True, exist_ok=True)
    files, sizes = [], []
    for k in range(n_files):
        path = out_dir / f"ner-annotate-{k + 1:02d}-of-{n_files:02d}.jsonl"
        part = [tasks[i] for i in order[k::n_files]]
        path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in part), encoding="utf-8")
        files.append(str(path))
        sizes.append(len(part))
    summary = ExportSummary(
        files=files,
        tasks_per_file=sizes,
        courses_per_source=counts,
        fractions=dict(fractions),
        seed=seed,
        pre_annotated_spans=sum(len(t["spans"]) for t in tasks),
        generic_one_word_labels=labeler.generic,
    )
    (out_dir / EXPORT_SUMMARY).write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    return summary
