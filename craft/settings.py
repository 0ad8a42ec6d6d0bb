"""The one place configuration lives: every component reads it from here, env prefix ``CRAFT_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration; override any field with ``CRAFT_<FIELD>`` or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="CRAFT_", env_file=".env", extra="ignore")

    # --- where things are -------------------------------------------------------------------
    data_dir: Path = Field(
        Path("data"), description="Raw sources (ESCO CSVs, BA tables, catalogs, API specs)."
    )
    store_dir: Path = Field(Path("var/store"), description="Knowledge snapshots and vector indexes.")
    model_dir: Path = Field(Path("var/models"), description="Prepared and trained models (registry root).")
    cache_dir: Path = Field(Path("var/cache"), description="HTTP response cache of the API clients.")

    # --- source layout, relative to data_dir ---------------------------------------------------
    esco_dir: str = Field("esco/v1.1.1_en", description="ESCO CSV download in the primary language (en).")
    esco_de_dir: str = Field("esco/de_v1.1.0", description="ESCO German labels for the same URIs.")
    ba_dir: str = Field("ba", description="Bundesagentur mapping tables and occupation titles.")
    courses_dir: str = Field("courses", description="Course catalog files.")
    apis_dir: str = Field("apis", description="OpenAPI specs of BERUFENET and Weiterbildungssuche.")

    # --- languages and models ------------------------------------------------------------------
    languages: list[str] = Field(["en", "de"], description="Languages labels are indexed and answered in.")
    linker_model: str = Field(
        "multilingual-e5-small",
        description="Encoder for occupation/skill linking; multilingual so EN and DE share one space.",
    )
    base_only: list[str] = Field(
        [],
        description="Registry names that resolve to their base model even when a trained fine-tune of them "
        "is registered: the A/B switch and the rollback that keep the trained model (not retrained).",
    )
    english_model: str = Field("all-MiniLM-L6-v2", description="English-only encoder (fast, EN catalogs).")
    course_encoders: dict[str, str] = Field(
        {"en": "all-MiniLM-L6-v2", "*": "multilingual-e5-small-torch"},
        description=(
            "Which encoder serves dense course retrieval for which language. A language key serves queries "
            "in that language when every allowed course language is that language too (MiniLM: best on the "
            "English gold set, 2x faster); '*' serves everything else, cross-lingually (e5: a German query "
            "finds English courses and the reverse). Each encoder has its own Chroma collection."
        ),
    )
    llm_model: str = Field("SmolLM2-135M-Instruct", description="Local instruction model (transformers).")
    llm_backend: Literal["local", "openai"] = Field("local", description="Local transformers or HTTP API.")
    llm_cpu_dtype: Literal["float32", "bfloat16"] = Field(
        "bfloat16",
        description="Weights of the local explanation model on CPU: bfloat16 halves its memory (≈ 270 MB "
        "less) for ≈ 10 % more generation time on an AVX512-BF16 CPU; float32 on CPUs without it.",
    )
    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. a vLLM server.")
    openai_api_key: str = Field("EMPTY", description="Key for the OpenAI-compatible endpoint.")
    openai_model: str | None = Field(None, description="Model (or LoRA adapter) name on that endpoint.")

    # --- the advisor agent ----------------------------------------------------------------------
    agent_ranker: Literal["first-stage", "cross-encoder", "llm"] = Field(
        "first-stage",
        description="Re-ranker of the agent's course list. The trained cross-encoder and LLM ranker improve "
        "silver but lower gold nDCG@10 (docs/benchmarks.md), so the first stage ranks by default.",
    )
    explain_backend: Literal["auto", "local", "openai", "template"] = Field(
        "auto", description="Where course explanations come from (auto: openai when llm_backend says so)."
    )
    agent_understanding: Literal["rules", "llm"] = Field(
        "rules", description="llm: an OpenAI-compatible chat model reads messages (rules as fallback)."
    )
    checkpoint_url: str = Field(
        "sqlite:///var/conversations.sqlite",
        description="Conversation memory: sqlite:///PATH (embedded) or postgresql://… (at scale).",
    )
    max_message_chars: int = Field(8000, description="Longer messages are refused with a clear message.")

    # --- server ----------------------------------------------------------------------------------
    server_host: str = Field("127.0.0.1", description="Interface `python -m server` listens on.")
    server_port: int = Field(8000, description="Port `python -m server` listens on.")
    api_keys: list[str] = Field(
        [], description="Keys accepted in X-API-Key by the advisor/admin endpoints; none: those are closed."
    )
    cors_origins: list[str] = Field(
        ["http://localhost:8000", "http://127.0.0.1:8000"],
        description="Origins allowed to call the API from a browser (the pages that embed the widget).",
    )
    rate_limit_per_minute: int = Field(
        120, ge=0, description="Requests per minute per client (API key or IP) on /v1; 0 turns it off."
    )
    max_body_bytes: int = Field(
        262_144, gt=0, description="Larger request bodies are refused (413) before they are read."
    )
    session_db: str | None = Field(
        None,
        description="SQLite file of the session registry and feedback events; default: next to the "
        "checkpointer's file (var/sessions.sqlite when conversations live elsewhere).",
    )
    log_message_text: bool = Field(False, description="Log what users write (off: only ids and timings).")
    public_url: str | None = Field(
        None, description="The server's public base URL (registers the Telegram webhook in webhook mode)."
    )

    # --- telegram --------------------------------------------------------------------------------
    telegram_token: str | None = Field(None, description="Bot token from @BotFather; unset: no Telegram bot.")
    telegram_secret_token: str | None = Field(
        None,
        description="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with every webhook call; "
        "the webhook refuses every call while it is unset.",
    )
    telegram_mode: Literal["polling", "webhook"] = Field(
        "polling", description="polling: `python -m channels.telegram` (development); webhook: in the server."
    )

    # --- indexes ---------------------------------------------------------------------------------
    index_sample: int | None = Field(
        None,
        description="Embed only a seeded sample of concepts and of described courses (CI); None embeds all.",
    )
    skill_index_label_types: list[str] = Field(
        ["pref"],
        description="Skill label types embedded in the dense index; alt labels (85k) are matched lexically. "
        "Add 'alt' to embed them too (≈15 more minutes on 2 cores).",
    )
    chroma_host: str | None = Field(None, description="Chroma server host; unset uses the embedded store.")
    chroma_port: int = Field(8000, description="Chroma server port.")
    encode_batch_size: int = Field(128, description="Batch size when encoding labels for the indexes.")

    # --- external APIs -------------------------------------------------------------------------
    berufenet_url: str = "https://rest.arbeitsagentur.de/infosysbub/bnet/pc/v1"
    berufenet_api_key: str = Field("infosysbub-berufenet", description="Public client id sent as X-API-Key.")
    weiterbildung_url: str = "https://rest.arbeitsagentur.de/infosysbub/wbsuche"
    weiterbildung_api_key: str = Field(
        "infosysbub-wbsuche", description="Public client id sent as X-API-Key."
    )
    esco_api_url: str = "https://ec.europa.eu/esco/api"
    http_timeout_s: float = 30.0
    http_retries: int = Field(4, description="Retries on 429/5xx/network errors, exponential backoff.")
    http_rate_per_s: float = Field(3.0, description="Client-side rate limit per API host.")
    offline: bool = Field(
        False, description="Never touch the network (also implied by HF_HUB_OFFLINE=1 tests)."
    )

    # --- derived paths -----------------------------------------------------------------------
    @property
    def esco_path(self) -> Path:
        return self.data_dir / self.esco_dir

    @property
    def esco_de_path(self) -> Path:
        return self.data_dir / self.esco_de_dir

    @property
    def ba_path(self) -> Path:
        return self.data_dir / self.ba_dir

    @property
    def courses_path(self) -> Path:
        return self.data_dir / self.courses_dir

    @property
    def apis_path(self) -> Path:
        return self.data_dir / self.apis_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
