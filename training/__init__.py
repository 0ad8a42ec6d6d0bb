"""Training: every model of the pipeline as a registered ``Stage`` (``craft train <stage>``).

Importing the package registers the stages (their heavy imports happen only when one runs).
"""

from training import explainer as _explainer  # noqa: F401 - registers the stage
from training import linker as _linker  # noqa: F401 - registers the stage
from training import llm_ranker as _llm_ranker  # noqa: F401 - registers the stage
from training import mlm as _mlm  # noqa: F401 - registers the stage
from training import ner as _ner  # noqa: F401 - registers the stage
from training import reranker as _reranker  # noqa: F401 - registers the stage
from training import retriever as _retriever  # noqa: F401 - registers the stage
from training.base import PROFILES, STAGES, ConfigError, Profile, Stage, StageConfig, get_stage, register

__all__ = ["PROFILES", "STAGES", "ConfigError", "Profile", "Stage", "StageConfig", "get_stage", "register"]
