"""Grounded course explanations: fact sheets, template fallback, faithfulness validation, generator.

Imports flow facts → templates → validate → generator; heavy libraries (transformers, peft, httpx) load
only when a backend is built.
"""

from tools.explain.facts import CourseFact, FactSheet, SheetError, SkillFact, build_fact_sheet
from tools.explain.generator import Explanation, ExplanationGenerator, FallbackStats
from tools.explain.templates import template_explanation
from tools.explain.validate import FaithfulnessChecker, Verdict, faithful

__all__ = [
    "CourseFact",
    "Explanation",
    "ExplanationGenerator",
    "FactSheet",
    "FaithfulnessChecker",
    "FallbackStats",
    "SheetError",
    "SkillFact",
    "Verdict",
    "build_fact_sheet",
    "faithful",
    "template_explanation",
]
