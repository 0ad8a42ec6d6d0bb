"""The `craft` command line: every command has --help; errors are messages with exit codes, not tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from craft.cli import app
from craft.settings import Settings, get_settings

runner = CliRunner()

COMMANDS = [
    [],
    ["data"],
    ["data", "fetch"],
    ["data", "build"],
    ["data", "report"],
    ["data", "enrich"],
    ["models"],
    ["models", "prepare"],
    ["models", "list"],
    ["index"],
    ["index", "build"],
    ["lookup"],
    ["lookup", "occupation"],
    ["lookup", "skills"],
    ["lookup", "show"],
    ["setup"],
    ["chat"],
    ["recommend"],
    ["bench"],
    ["eval"],
    ["qrels"],
    ["qrels", "silver"],
    ["train"],
    ["train", "reranker"],
    ["train", "all"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "craft")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_train_help_lists_the_stages() -> None:
    from training import STAGES

    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert all(name in result.output for name in STAGES) and "reranker" in result.output
    for profile in ("tiny", "cpu", "full"):
        assert profile in runner.invoke(app, ["train", "reranker", "--help"]).output


def test_train_rejects_a_bad_config_before_touching_data(tmp_path: Path) -> None:
    config = tmp_path / "reranker.yaml"
    config.write_text("max_length: 128\nlearning_rat: 0.1\n")
    result = runner.invoke(app, ["train", "reranker", "--profile", "tiny", "--config", str(config)])
    assert result.exit_code == 1
    assert "learning_rat" in result.output and "unknown config key" in result.output
    result = runner.invoke(app, ["train", "reranker", "--profile", "huge"])
    assert result.exit_code == 1 and "unknown profile 'huge'" in result.output


@pytest.fixture
def empty_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRAFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRAFT_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("CRAFT_OFFLINE", "1")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_build_without_esco_names_the_missing_files(empty_env: Path) -> None:
    result = runner.invoke(app, ["data", "build"])
    assert result.exit_code == 2
    assert "occupations_en.csv" in result.output and "esco.ec.europa.eu" in result.output


def test_setup_offline_without_esco_stops_with_instructions(empty_env: Path) -> None:
    result = runner.invoke(app, ["setup"])
    assert result.exit_code == 2
    assert "occupations_en.csv" in result.output


@pytest.mark.parametrize("source", ["esco", "berufenet", "weiterbildung"])
def test_fetch_offline_fails_fast_naming_the_source(empty_env: Path, source: str) -> None:
    result = runner.invoke(app, ["data", "fetch", source])
    assert result.exit_code == 2
    assert "offline" in result.output.lower()


def test_report_without_snapshot(empty_env: Path) -> None:
    result = runner.invoke(app, ["data", "report"])
    assert result.exit_code == 1 and "craft data build" in result.output


@pytest.mark.data
def test_lookup_json_contract(real_settings: Settings) -> None:
    result = runner.invoke(app, ["lookup", "occupation", "data analyst", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["label"] == "data analyst"
    assert set(rows[0]) == {"uri", "label", "score", "matched_label", "match"}


@pytest.mark.data
def test_lookup_rejects_overlong_text(real_settings: Settings) -> None:
    result = runner.invoke(app, ["lookup", "skills", "x" * 5000])
    assert result.exit_code == 1 and "4,000" in result.output


@pytest.mark.data
def test_chat_talks_to_the_advisor_and_keeps_the_conversation(
    real_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRAFT_CHECKPOINT_URL", f"sqlite:///{tmp_path / 'chat.sqlite'}")
    get_settings.cache_clear()
    try:
        args = ["chat", "--no-explain", "--conversation", "cli-test"]
        result = runner.invoke(app, args, input="I'd like to become a baker\nquit\n")
        assert result.exit_code == 0, result.output
        assert "baker" in result.output and "What do you already know?" in result.output
        again = runner.invoke(app, args, input="I know SQL\nquit\n")
        assert again.exit_code == 0, again.output
        assert "Continuing conversation 'cli-test' (1 turns)" in again.output
        assert "SQL" in again.output and "1. **" in again.output  # the course list for the stored goal
    finally:
        get_settings.cache_clear()


@pytest.mark.data
def test_recommend_json_contract(real_settings: Settings) -> None:
    from knowledge.course_skills import default_extractors, enrich_courses
    from knowledge.store import get_knowledge

    kb = get_knowledge(real_settings)
    enrich_courses(real_settings, kb, default_extractors(real_settings, kb), progress=False)
    result = runner.invoke(
        app, ["recommend", "--occupation", "data analyst", "--have", "SQL; Excel", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 10
    assert set(rows[0]) == {
        "course_id", "source", "url", "title", "score", "covers",
        "provider", "language", "level", "format", "price", "currency", "free",
    }  # fmt: skip
    catalog = set(kb.courses.id)
    assert all(r["course_id"] in catalog for r in rows)  # never a course outside the catalog
    have_sql = "http://data.europa.eu/esco/skill/598de5b0-5b58-4ea7-8058-a4bc4d18c742"
    assert all(c["uri"] != have_sql for r in rows for c in r["covers"])  # known skills are not in the gap
