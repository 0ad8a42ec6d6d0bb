"""Job-market abbreviations that ESCO labels spell out; queries are expanded with them before lookup."""

from __future__ import annotations

import re

ABBREVIATIONS: dict[str, str] = {
    "ux": "user experience",
    "ui": "user interface",
    "seo": "search engine optimisation",
    "sem": "search engine marketing",
    "hr": "human resources",
    "it": "information technology",
    "ict": "information and communications technology",
    "qa": "quality assurance",
    "pm": "project manager",
    "bi": "business intelligence",
    "ml": "machine learning",
    "ai": "artificial intelligence",
    "ki": "künstliche intelligenz",
    "nlp": "natural language processing",
    "crm": "customer relationship management",
    "erp": "enterprise resource planning",
    "cad": "computer-aided design",
    "cnc": "computer numerical control",
    "devops": "development operations",
    "dba": "database administrator",
    "ceo": "chief executive officer",
    "cfo": "chief financial officer",
    "cto": "chief technology officer",
    "ppc": "pay per click advertising",
    "gdpr": "general data protection regulation",
    "dsgvo": "datenschutz-grundverordnung",
    "kfz": "kraftfahrzeug",
    "edv": "elektronische datenverarbeitung",
    "bwl": "betriebswirtschaftslehre",
    "mfa": "medizinische fachangestellte",
    "pta": "pharmazeutisch-technische assistentin",
    "mta": "medizinisch-technische assistentin",
}

_TOKEN = re.compile(r"[\w+#]+", re.UNICODE)


def expand(text: str) -> str | None:
    """The query with known abbreviations spelled out, or None when nothing was expanded."""
    changed = False

    def repl(match: re.Match[str]) -> str:
        nonlocal changed
        word = match.group(0)
        full = ABBREVIATIONS.get(word.lower())
        if full and (word.isupper() or len(word) > 3 or word.lower() in {"ux", "ui", "seo", "hr", "qa"}):
            changed = True
            return full
        return word

    expanded = _TOKEN.sub(repl, text)
    return expanded if changed else None
