"""Value normalizers shared by the adapters: every source maps 'Beginner', 'en_US', '€139.99' alike."""

from __future__ import annotations

import ast
import re
from datetime import date
from html.parser import HTMLParser

from knowledge.courses.schema import Format, Level

_LEVELS: dict[str, Level] = {
    "beginner": "beginner",
    "beginner level": "beginner",
    "introductory": "beginner",
    "intro": "beginner",
    "basic": "beginner",
    "intermediate": "intermediate",
    "intermediate level": "intermediate",
    "advanced": "advanced",
    "expert": "advanced",
    "expert level": "advanced",
    "mixed": "mixed",
    "all levels": "mixed",
    "all": "mixed",
    "anfänger": "beginner",
    "einsteiger": "beginner",
    "grundlagen": "beginner",
    "mittel": "intermediate",
    "fortgeschritten": "advanced",
    "fortgeschrittene": "advanced",
    "alle": "mixed",
}

# Language names as the catalogs spell them (English and endonyms); ISO codes pass through.
_LANGUAGES: dict[str, str] = {
    "english": "en",
    "spanish": "es",
    "español": "es",
    "espanol": "es",
    "german": "de",
    "deutsch": "de",
    "french": "fr",
    "français": "fr",
    "francais": "fr",
    "italian": "it",
    "italiano": "it",
    "portuguese": "pt",
    "português": "pt",
    "portugues": "pt",
    "chinese": "zh",
    "中文": "zh",
    "japanese": "ja",
    "日本語": "ja",
    "arabic": "ar",
    "اللغة العربية": "ar",
    "العربية": "ar",
    "dutch": "nl",
    "nederlands": "nl",
    "russian": "ru",
    "русский": "ru",
    "turkish": "tr",
    "türkçe": "tr",
}

_FORMATS: dict[str, Format] = {
    "online": "online",
    "self-paced": "online",
    "self paced": "online",
    "e-learning": "online",
    "elearning": "online",
    "virtual": "online",
    "in-person": "in-person",
    "in person": "in-person",
    "onsite": "in-person",
    "on-site": "in-person",
    "classroom": "in-person",
    "präsenz": "in-person",
    "blended": "blended",
    "hybrid": "blended",
}

_CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF"}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_PER_WEEK = r"\s*(\d+(?:\.\d+)?)\s*(?:[–-]\s*(\d+(?:\.\d+)?))?\s*hours?\s+per\s+week\s*"


def clean(value: object) -> str | None:
    """Trimmed text with '\\n' line ends; None for blanks and 'null'/'nan' placeholders."""
    if value is None:
        return None
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text or text.lower() in {"null", "none", "nan", "n/a"}:
        return None
    return text


def level(value: object) -> Level:
    text = clean(value)
    if text is None:
        return "unknown"
    return _LEVELS.get(" ".join(text.lower().split()), "unknown")


def language(value: object) -> str | None:
    """ISO 639-1 code from a name ('English', 'Español') or a locale ('en_US', 'de-DE'); unknown → None."""
    text = clean(value)
    if text is None:
        return None
    key = text.lower()
    if key in _LANGUAGES:
        return _LANGUAGES[key]
    match = re.fullmatch(r"([a-z]{2})(?:[-_][a-z]{2,4})?", key)
    return match.group(1) if match else None


def course_format(value: object) -> Format:
    text = clean(value)
    if text is None:
        return "unknown"
    return _FORMATS.get(text.lower(), "unknown")


def number(text: str) -> float | None:
    """First number in ``text``; '1,234.5' and '1.234,5' both read as 1234.5, '139,99' as 139.99."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    raw = match.group(0)
    if "," in raw and "." in raw:
        decimal = "," if raw.rfind(",") > raw.rfind(".") else "."
        raw = raw.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif "," in raw:
        head, _, tail = raw.rpartition(",")
        raw = raw.replace(",", "") if len(tail) == 3 and head else raw.replace(",", ".")
    return float(raw)


def price(value: object) -> tuple[float | None, str | None, bool | None]:
    """(price, currency, free) from '€139.99', 'Free', '49 USD', 0, 'Paid'.

    Free courses get price 0.0 and no currency. A stated zero is taken as free here; sources where zero
    means "not stated" (Arbeitsagentur, Coachable) handle that before calling this.
    """
    if isinstance(value, bool):
        return None, None, None
    if isinstance(value, int | float):
        return (0.0, None, True) if value == 0 else (float(value), None, False)
    text = clean(value)
    if text is None:
        return None, None, None
    lowered = text.lower()
    if lowered.startswith("free") and "trial" not in lowered:
        return 0.0, None, True
    if lowered in {"kostenlos", "gratis", "0"}:
        return 0.0, None, True
    amount = number(text)
    currency = next((code for symbol, code in _CURRENCY_SYMBOLS.items() if symbol in text), None)
    code = re.search(r"\b([A-Z]{3})\b", text)
    if code:
        currency = code.group(1)
    if amount is None:
        # 'Paid', 'Free Trial': we know it costs something, not how much.
        return None, None, False if lowered in {"paid", "free trial"} else None
    if amount == 0:
        return 0.0, None, True
    return amount, currency, False


def boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = clean(value)
    if text is None:
        return None
    return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())


def hours(value: object) -> float | None:
    """Hours from a number or a text like '2.5 hours' / '90 min' / 'Less Than 2 Hours' (upper bound kept)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    text = clean(value)
    if text is None:
        return None
    lowered = text.lower()
    amount = number(lowered)
    if amount is None or amount <= 0:
        return None
    if re.fullmatch(r"[\d.,]+", lowered):
        return amount
    if re.search(r"\b(hours?|hrs?|stunden?|std)\b", lowered):
        return amount
    if re.search(r"\b(minutes?|mins?|minuten)\b", lowered):
        return round(amount / 60, 2)
    return None


def weekly_hours(length: str | None, effort: str | None) -> float | None:
    """'6 Weeks' × '2–4 hours per week' → 18.0 (midpoint of the effort range); anything else → None."""
    if not length or not effort:
        return None
    weeks = re.fullmatch(r"\s*(\d+)\s*weeks?\s*", length, flags=re.IGNORECASE)
    per_week = re.fullmatch(_PER_WEEK, effort, flags=re.IGNORECASE)
    if not weeks or not per_week:
        return None
    low = float(per_week.group(1))
    high = float(per_week.group(2) or low)
    return int(weeks.group(1)) * (low + high) / 2


def python_list(value: str | None) -> list[str] | None:
    """Items of a Python-list literal like "['SQL', 'Excel']"; None when it is not one (caller notes it)."""
    text = clean(value)
    if text is None:
        return []
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(parsed, list | tuple):
        return None
    return unique(str(item) for item in parsed)


def unique(items: object) -> list[str]:
    """Trimmed, non-empty, first occurrence kept: sources repeat tags ('Risk Management' ×3)."""
    seen: dict[str, None] = {}
    for item in items:  # type: ignore[attr-defined]
        text = clean(item)
        if text is not None:
            seen.setdefault(text, None)
    return list(seen)


def german_dates(text: str | None) -> list[date]:
    """Dates written dd.mm.yyyy, sorted and unique; impossible dates are skipped."""
    found: set[date] = set()
    for day, month, year in re.findall(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b", text or ""):
        try:
            found.add(date(int(year), int(month), int(day)))
        except ValueError:
            continue
    return sorted(found)


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "table", *(f"h{n}" for n in range(1, 7))})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(value: str | None) -> str | None:
    """Plain text with one line per block element, so lists in course contents stay readable."""
    text = clean(value)
    if text is None:
        return None
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return clean("\n".join(line for line in lines if line))
