"""Training: every model of the pipeline as a registered ``Stage`` (``craft train <stage>``).

Importing the package registers the stages (their heavy imports happen only when one runs).
"""

from training import reranker as _reranker  # noqa: F401 - registers the stage
from training.base import PROFILES, STAGES, ConfigError, Profile, Stage, StageConfig, get_stage, register

__all__ = ["PROFILES", "STAGES", "ConfigError", "Profile", "Stage", "StageConfig", "get_stage", "register"]
