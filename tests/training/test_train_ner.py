"""The NER stage: weak labels (conflicts, frequency cutoff, segments), the annotation exporter and importer
(Prodigy, Label Studio, doccano, malformed lines), the data split, and the tiny profile end to end — a
loadable tagger the registry resolves and ``NerExtractor`` serves, trained with hand annotations."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from craft.settings import Settings
from knowledge.course_skills import PhraseExtractor, default_extractors
from knowledge.models import ModelManifest, ModelMissing, resolve
from knowledge.ner_extractor import NerExtractor, tags_to_spans
from knowledge.store import get_knowledge
from knowledge.text import normalize
from training import get_stage
from training.annotation import (
    AnnotationError,
    annotation_task,
    export_for_annotation,
    read_annotations,
)
from training.ner import NerConfig, build_ner_data, course_scores, span_scores
from training.weak_labels import CatalogText, WeakLabeler, capitalized_norms, resolve_conflicts, to_segments

S = "http://data.europa.eu/esco/skill/"


def _labels() -> pd.DataFrame:
    rows = [
        (S + "pm", "project management", "pref"),
        (S + "mgmt", "management", "pref"),
        (S + "stats", "statistics", "pref"),
        (S + "py", "Python", "pref"),
        (S + "ml", "machine learning", "pref"),
    ]
    frame = pd.DataFrame(rows, columns=["uri", "label", "label_type"])
    frame["lang"], frame["kind"] = "en", "skill"
    frame["norm"] = frame.label.map(normalize)
    frame.insert(0, "label_id", [f"L{i}" for i in range(len(frame))])
    return frame


def _item(text: str, cid: str = "c1", title: str = "") -> CatalogText:
    return CatalogText(cid, "test", "en", title, text)


@pytest.fixture(scope="module")
def labeler() -> WeakLabeler:
    texts = [
        _item("We use statistics and Python.", "c1"),
        _item("More statistics with Python here.", "c2"),
        _item("Project management and machine learning.", "c3"),
        _item("Nothing to see.", "c4"),
    ]
    return WeakLabeler.fit(
        PhraseExtractor(_labels()), texts, max_one_word_df=0.4, names=capitalized_norms(_labels())
    )


# --- weak labels -----------------------------------------------------------------------------------------


def test_conflicts_longest_span_wins_then_the_earliest() -> None:
    assert resolve_conflicts([(0, 10), (5, 25), (8, 12), (30, 34), (32, 36), (0, 10)]) == [(5, 25), (30, 34)]
    assert resolve_conflicts([(3, 3), (1, 2)]) == [(1, 2)]


def test_frequent_one_word_labels_are_dropped_but_names_and_titles_kept(labeler: WeakLabeler) -> None:
    assert labeler.generic == {"statistics": 0.5}  # Python is as frequent but a name (capitalized in ESCO)
    text = "Statistics, Python and project management"
    assert [n for _, _, n in labeler.spans(text, "text")] == ["python", "project management"]
    assert [n for _, _, n in labeler.spans("Statistics", "title")] == ["statistics"]


def test_segments_carry_bio_tags_and_drop_short_fragments(labeler: WeakLabeler) -> None:
    text = "Learn project management today. Ok.\nMachine learning with Python for everyone"
    item = _item(text)
    spans = [(s, e) for s, e, _ in labeler.spans(text)]
    segments = to_segments(item, "text", spans, max_words=48, min_words=3)
    assert [" ".join(s.words) for s in segments] == [
        "Learn project management today .",
        "Machine learning with Python for everyone",
    ]  # "Ok ." has fewer than 3 words
    assert segments[0].tags == ("O", "B-SKILL", "I-SKILL", "O", "O")
    assert segments[1].tags == ("B-SKILL", "I-SKILL", "O", "B-SKILL", "O", "O")
    windows = to_segments(item, "text", spans, max_words=2, min_words=1)
    assert all(
        not (seg.tags and seg.tags[0] == "I-SKILL") for seg in windows
    )  # a window never starts inside a span
    assert all(s.origin == "weak" and s.positive == any(t != "O" for t in s.tags) for s in segments)


def test_config_names_missing_annotation_files(tmp_path: Path) -> None:
    from training.base import ConfigError

    with pytest.raises(ConfigError, match="annotation file"):
        NerConfig.for_profile("cpu", {"annotations": [str(tmp_path / "nope.jsonl")]})
    assert NerConfig.for_profile("full").freeze_embeddings is False
    assert NerConfig.for_profile("cpu").max_length == 128


def test_metrics_on_spans_and_courses() -> None:
    gold = [["B-SKILL", "I-SKILL", "O", "B-SKILL"]]
    assert span_scores(gold, gold) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    half = span_scores(gold, [["B-SKILL", "O", "O", "B-SKILL"]])  # one boundary wrong: 1 of 2 spans
    assert half == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    scores = course_scores({"a": {"x", "y"}, "b": {"z"}}, {"a": {"x", "q"}, "c": {"z"}})
    assert scores == {"precision": 0.5, "recall": round(1 / 3, 4), "f1": 0.4}


# --- annotation import -----------------------------------------------------------------------------------


def _jsonl(path: Path, lines: list[object | str]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    return path


def test_prodigy_accepts_counts_rejects_and_reports_bad_lines(tmp_path: Path) -> None:
    text = "Learn Python and SQL"
    path = _jsonl(
        tmp_path / "prodigy.jsonl",
        [
            {"text": text, "spans": [{"start": 6, "end": 12, "label": "SKILL"}], "answer": "accept",
             "meta": {"course_id": "coursera:1", "source": "coursera"}},
            {"text": text, "spans": [], "answer": "reject"},
            {"text": text, "spans": [], "answer": "ignore"},
            "{not json",
            {"text": text, "spans": [{"start": 17, "end": 99, "label": "SKILL"}], "answer": "accept"},
            {"text": text, "spans": [{"start": 6, "end": 12, "label": "SKILL"}]},  # a task, not an answer
            "",
            {"text": text, "spans": [{"start": "6", "end": 12, "label": "SKILL"}], "answer": "accept"},
        ],
    )  # fmt: skip
    result = read_annotations(path)
    assert len(result.annotations) == 1
    note = result.annotations[0]
    assert (note.format, note.course_id, note.source, note.line) == ("prodigy", "coursera:1", "coursera", 1)
    assert note.skill_spans() == [(6, 12)]
    assert result.skipped == {"prodigy reject": 1, "prodigy ignore": 1}
    assert [i.line for i in result.issues] == [4, 5, 6, 8]
    assert "invalid JSON" in result.issues[0].message and "outside the text" in result.issues[1].message
    assert "answer" in result.issues[2].message and "integers" in result.issues[3].message
    with pytest.raises(AnnotationError, match=r"line 5: span \[17, 99\)"):
        result.raise_for_issues()


def test_label_studio_json_and_jsonl(tmp_path: Path) -> None:
    text = "Projektmanagement mit Scrum"
    task = {
        "id": 1,
        "data": {"text": text, "meta": {"course_id": "arbeitsagentur:9", "source": "arbeitsagentur"}},
        "annotations": [
            {"was_cancelled": True, "result": []},
            {
                "result": [
                    {"type": "labels", "value": {"start": 0, "end": 17, "text": "Projektmanagement",
                                                 "labels": ["SKILL"]}},
                    {"type": "labels", "value": {"start": 22, "end": 27, "labels": ["Tool"]}},
                    {"type": "choices", "value": {"choices": ["ok"]}},
                ]
            },
        ],
    }  # fmt: skip
    cancelled = {"data": {"text": text}, "annotations": [{"was_cancelled": True, "result": []}]}
    unannotated = {"data": {"text": text}, "annotations": []}
    mismatch = {
        "data": {"text": text},
        "annotations": [
            {"result": [{"value": {"start": 0, "end": 4, "text": "Scrum", "labels": ["SKILL"]}}]}
        ],
    }
    as_json = tmp_path / "label-studio.json"
    as_json.write_text(json.dumps([task, cancelled, unannotated, mismatch]), encoding="utf-8")
    result = read_annotations(as_json)
    assert [a.format for a in result.annotations] == ["label-studio"]
    note = result.annotations[0]
    assert note.course_id == "arbeitsagentur:9" and note.skill_spans() == [(0, 17)]
    assert [s.label for s in note.spans] == ["SKILL", "Tool"]
    assert result.skipped == {"label-studio cancelled": 1, "label-studio unannotated": 1}
    assert [(i.line, "'Scrum'" in i.message) for i in result.issues] == [(4, True)]

    jsonl = read_annotations(_jsonl(tmp_path / "label-studio.jsonl", [task, "[1, 2"]))
    assert len(jsonl.annotations) == 1 and [i.line for i in jsonl.issues] == [2]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"data": {"text": "x"}},\n  {oops}]', encoding="utf-8")
    assert [i.line for i in read_annotations(broken).issues] == [2]


def test_doccano_label_and_entities_formats(tmp_path: Path) -> None:
    text = "Excel und Buchhaltung"
    path = _jsonl(
        tmp_path / "doccano.jsonl",
        [
            {"id": 1, "text": text, "label": [[0, 5, "SKILL"], [10, 21, "SKILL"]], "course_id": "x:1"},
            {"id": 2, "text": text, "entities": [{"id": 7, "label": "SKILL", "start_offset": 10,
                                                  "end_offset": 21}], "relations": []},
            {"id": 3, "text": text, "label": [[0, 5]]},
            {"id": 4, "text": "", "label": []},
            {"id": 5, "title": "no text at all"},
            ["not", "an", "object"],
        ],
    )  # fmt: skip
    result = read_annotations(path)
    assert [(a.format, a.skill_spans()) for a in result.annotations] == [
        ("doccano", [(0, 5), (10, 21)]),
        ("doccano", [(10, 21)]),
    ]
    assert result.annotations[0].course_id == "x:1"
    assert [i.line for i in result.issues] == [3, 4, 5, 6]
    assert "triples" in result.issues[0].message and "unrecognized" in result.issues[2].message
    assert "2 annotation(s) (doccano 2)" in result.report() and "4 malformed record(s)" in result.report()
    with pytest.raises(FileNotFoundError):
        read_annotations(tmp_path / "missing.jsonl")


def test_cli_import_reports_malformed_lines_and_fails(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import craft.cli

    good = {"text": "Learn SQL", "label": [[6, 9, "SKILL"]]}
    path = _jsonl(tmp_path / "doccano.jsonl", [good, {"text": "x", "label": [[0, 5, "SKILL"]]}])
    result = CliRunner().invoke(craft.cli.app, ["annotate", "import", str(path)])
    assert result.exit_code == 1
    assert "1 annotation(s) (doccano 1)" in result.output and "line 2: span [0, 5)" in result.output
    ok = CliRunner().invoke(craft.cli.app, ["annotate", "import", str(_jsonl(tmp_path / "ok.jsonl", [good]))])
    assert ok.exit_code == 0, ok.output


# --- export and data on the real catalog -----------------------------------------------------------------


@pytest.mark.data
def test_export_samples_fractions_per_source_into_n_files(
    enriched_settings: Settings, tmp_path: Path
) -> None:
    kb = get_knowledge(enriched_settings)
    described = kb.courses[kb.courses.has_description.astype(bool) & kb.courses.language.isin(["en", "de"])]
    sizes = described.source.value_counts()
    summary = export_for_annotation(
        enriched_settings, {"coursera": 0.02, "arbeitsagentur": 0.5, "brandenburg": 1.0}, 3, tmp_path, seed=7
    )
    expected = {
        "coursera": round(0.02 * sizes["coursera"]),
        "arbeitsagentur": round(0.5 * sizes["arbeitsagentur"]),
        "brandenburg": int(sizes["brandenburg"]),
    }
    assert summary.courses_per_source == expected
    assert len(summary.files) == 3 and sum(summary.tasks_per_file) == sum(expected.values())
    assert max(summary.tasks_per_file) - min(summary.tasks_per_file) <= 1
    tasks = [json.loads(line) for f in summary.files for line in Path(f).read_text().splitlines()]
    assert {t["meta"]["source"] for t in tasks} == set(expected)
    assert len({t["meta"]["course_id"] for t in tasks}) == len(tasks)
    assert sum(len(t["spans"]) for t in tasks) == summary.pre_annotated_spans > 0
    for task in tasks:
        for span in task["spans"]:
            tokens = task["tokens"]
            assert tokens[span["token_start"]]["start"] == span["start"]
            assert tokens[span["token_end"]]["end"] == span["end"] and span["label"] == "SKILL"
    assert json.loads((tmp_path / "export.json").read_text())["seed"] == 7
    again = export_for_annotation(
        enriched_settings, {"coursera": 0.02, "arbeitsagentur": 0.5, "brandenburg": 1.0}, 3, tmp_path / "b", 7
    )
    assert [Path(f).read_text() for f in again.files] == [Path(f).read_text() for f in summary.files]
    # an export is a task list, not annotations: importing it unanswered is an error on every line
    unanswered = read_annotations(Path(summary.files[0]))
    assert not unanswered.annotations and len(unanswered.issues) == summary.tasks_per_file[0]
    with pytest.raises(ValueError, match="unknown or undescribed source"):
        export_for_annotation(enriched_settings, {"nowhere": 0.5}, 1, tmp_path / "c")
    with pytest.raises(ValueError, match=r"fractions must be in \(0, 1\]"):
        export_for_annotation(enriched_settings, {"coursera": 1.5}, 1, tmp_path / "d")
    with pytest.raises(ValueError, match="would be empty"):
        export_for_annotation(enriched_settings, {"brandenburg": 0.1}, 5, tmp_path / "e")


@pytest.mark.data
def test_tiny_data_splits_by_course_and_samples_negatives(enriched_settings: Settings) -> None:
    config = NerConfig.for_profile("tiny", {"train_segments": 40, "negative_ratio": 0.5})
    data, data_hash = build_ner_data(enriched_settings, config)
    train_courses = {s.course_id for s in data.train}
    held = {s.course_id for s in data.validation} | {c.course_id for c in data.courses}
    assert train_courses and held and not train_courses & held
    positives = sum(s.positive for s in data.train)
    assert positives == 40 and len(data.train) - positives == 20
    assert all(data.gold[c.course_id] for c in data.courses) and len(data.courses) <= 3
    summary = data.summary()
    assert summary["catalog_courses"] == 150 and summary["train"]["segments"] == 60
    again, again_hash = build_ner_data(enriched_settings, config)
    assert again_hash == data_hash and [s.words for s in again.train] == [s.words for s in data.train]


# --- the tiny profile end to end ---------------------------------------------------------------------------


def _quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture(scope="module")
def tiny(
    isolate: Callable[[Path], Settings],
    link_base: Callable[[Settings, str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, ModelManifest]:
    root = tmp_path_factory.mktemp("ner")
    settings = isolate(root)
    link_base(settings, "multilingual-e5-small-torch")
    kb = get_knowledge(settings)
    phrase = PhraseExtractor.from_kb(kb)
    described = kb.courses[kb.courses.has_description.astype(bool) & (kb.courses.language == "en")]
    # hand annotations (Prodigy answers) for six courses: the pre-annotated task, accepted as it is
    lines = []
    for row in described.itertuples():
        item = CatalogText(row.id, row.source, "en", "", row.description[:400])
        task = annotation_task(item, WeakLabeler(phrase))
        if task["spans"]:
            lines.append(json.dumps({**task, "answer": "accept"}))
        if len(lines) == 6:
            break
    hand = root / "hand.jsonl"
    hand.write_text("\n".join(lines) + "\n", encoding="utf-8")
    overrides = {"annotations": [str(hand)], "annotation_holdout": 0.5, "max_one_word_df": 1.0}
    config = NerConfig.for_profile("tiny", overrides)
    manifest = get_stage("ner").run(settings, "tiny", config, console=_quiet())
    return settings, manifest


@pytest.mark.data
@pytest.mark.slow
def test_tiny_profile_trains_a_tagger_the_registry_resolves(tiny: tuple[Settings, ModelManifest]) -> None:
    settings, manifest = tiny
    folder, found = resolve(settings, "ner")
    assert found == manifest and folder == settings.model_dir / manifest.name
    assert (manifest.role, manifest.format, manifest.base_model) == (
        "ner",
        "hf-token-classification",
        "multilingual-e5-small-torch",
    )
    assert manifest.config["finetune_of"] == "ner" and manifest.config["tags"] == ["O", "B-SKILL", "I-SKILL"]
    data = manifest.config["data"]
    assert data["train_hand"] > 0 and data["hand_validation"]["segments"] > 0
    metrics = manifest.metrics
    for key in ("weak_span_f1", "course_ner_f1", "course_phrase_f1", "course_union_f1", "hand_span_f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["hand_rule_span_f1"] == 1.0  # the hand labels are the rule's spans, accepted unchanged
    assert metrics["course_eval_courses"] == data["course_eval_courses"] > 0
    assert metrics["train_steps"] == metrics["max_steps"] > 0
    assert not (settings.cache_dir / "train" / manifest.name).exists()


@pytest.mark.data
@pytest.mark.slow
def test_ner_extractor_serves_the_trained_model(tiny: tuple[Settings, ModelManifest]) -> None:
    settings, manifest = tiny
    kb = get_knowledge(settings)
    extractors = default_extractors(settings, kb, ner=True)
    ner = extractors[-1]
    assert isinstance(ner, NerExtractor) and ner.model_name == manifest.name
    assert ner.version.startswith("ner1:")
    assert [type(x).__name__ for x in extractors] == ["PhraseExtractor", "SourceExtractor", "NerExtractor"]
    text = "You will learn project management, Python programming and machine learning with Excel."
    spans = ner.tagger.spans([text])[0]
    assert all(text[s.start : s.end] == s.text and 0.0 <= s.score <= 1.0 for s in spans)
    evidence = ner.extract("x", "Data analysis with Python", text, "en")
    assert all(e.skill_uri in kb.skills and e.method == "ner" for e in evidence)
    for e in evidence:
        source = "Data analysis with Python" if e.field == "title" else text
        assert source[e.start : e.end] == e.span
    # the tagger's BIO decoding gives spans within the words it was given
    tagged = ner.tagger.tag_words([["Learn", "Python", "."]])[0]
    assert len(tagged) == 3 and all(t in ("O", "B-SKILL", "I-SKILL") for t, _ in tagged)
    assert all(b <= 3 for _, b in tags_to_spans([t for t, _ in tagged]))


def test_shipped_profiles_start_from_the_domain_pretrained_encoder(tmp_path: Path) -> None:
    """cpu / full tag on the MLM encoder (it won the NER A/B); tiny (CI) needs no MLM model first."""
    assert NerConfig.for_profile("cpu").base_model == "mlm" == NerConfig.for_profile("full").base_model
    assert NerConfig.for_profile("tiny").base_model == "multilingual-e5-small-torch"
    with pytest.raises(ModelMissing, match=r"run `craft train mlm`"):
        resolve(Settings(model_dir=tmp_path), NerConfig.for_profile("cpu").base_model)
