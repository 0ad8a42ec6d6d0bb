"""Replies rendered for Telegram: HTML parse mode (every piece of text escaped, links only to http(s) URLs),
course lists as numbered items with linked titles, the profile summary, and the channel's own few sentences
(commands, refusals, apologies) in English and German.

Telegram refuses a message over 4,096 characters and one whose HTML does not parse, so ``split`` cuts long
replies at paragraph, then line, then word boundaries, never inside a tag or an entity, and closes the tags
open at a cut (re-opening them in the next piece).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from agent.state import AdvisorState, Lang, Preferences, ShownCourse

LIMIT = 4096
"""Telegram's maximum message length."""

TEXTS: dict[str, dict[Lang, str]] = {
    "welcome_back": {
        "en": "Welcome back! Here is where we left off:",
        "de": "Willkommen zurück! Hier ist unser Stand:",
    },
    "profile_head": {"en": "Your profile", "de": "Ihr Profil"},
    "goal": {"en": "Goal", "de": "Ziel"},
    "skills": {"en": "Skills you have", "de": "Ihre Fähigkeiten"},
    "skip": {"en": "Not interested in", "de": "Kein Interesse an"},
    "gap": {"en": "Skill gap", "de": "Fehlende Fähigkeiten"},
    "gap_size": {
        "en": "{n} skills, {essential} of them essential",
        "de": "{n}, davon {essential} wesentlich",
    },
    "filters": {"en": "Filters", "de": "Filter"},
    "candidates": {"en": "Still to choose", "de": "Noch zu wählen"},
    "not_set": {"en": "not set yet", "de": "noch nicht festgelegt"},
    "none": {"en": "none", "de": "keine"},
    "next_goal": {
        "en": "Which job would you like to have?",
        "de": "Welchen Beruf möchten Sie ausüben?",
    },
    "next_skills": {
        "en": 'What do you already know? List some skills or tools, or say "nothing yet".',
        "de": "Was können Sie schon? Nennen Sie Fähigkeiten oder Werkzeuge, oder sagen Sie „noch nichts“.",
    },
    "next_courses": {
        "en": "Send /courses to see your course list again.",
        "de": "Mit /courses sehen Sie Ihre Kursliste wieder.",
    },
    "courses_head": {
        "en": "Your courses for becoming a {label}:",
        "de": "Ihre Kurse auf dem Weg zu {label}:",
    },
    "covers": {"en": "Covers", "de": "Vermittelt"},
    "free": {"en": "free", "de": "kostenlos"},
    "too_long": {
        "en": "Sorry, that message is {n:,} characters long; I can read at most {max:,} at a time. Could you "
        "shorten it, or send it in parts?",
        "de": "Entschuldigung, diese Nachricht ist {n:,} Zeichen lang; ich kann höchstens {max:,} auf einmal "
        "lesen. Könnten Sie sie kürzen oder in Teilen senden?",
    },
    "error": {
        "en": "Sorry, something went wrong on my side. Please try again in a moment.",
        "de": "Entschuldigung, bei mir ist etwas schiefgegangen. Bitte versuchen Sie es gleich noch einmal.",
    },
    "stale": {
        "en": "That button belongs to an older message; please use the latest one.",
        "de": "Diese Schaltfläche gehört zu einer älteren Nachricht; bitte nutzen Sie die neueste.",
    },
    "text_only": {
        "en": "I can only read text messages. Paste your CV or list your skills as text.",
        "de": "Ich kann nur Textnachrichten lesen. Fügen Sie Ihren Lebenslauf oder Ihre Fähigkeiten als "
        "Text ein.",
    },
    "choose_language": {
        "en": "Which language should I answer in?",
        "de": "In welcher Sprache soll ich antworten?",
    },
    "help": {
        "en": "Tell me the job you'd like to have and what you already know; I'll recommend courses for the "
        "skills you are missing.\n\n/start – start or continue\n/courses – your course list\n"
        "/profile – what I know about you\n/language – reply language\n/reset – start over",
        "de": "Nennen Sie mir Ihren Wunschberuf und was Sie schon können; ich empfehle Kurse für die "
        "fehlenden Fähigkeiten.\n\n/start – beginnen oder fortsetzen\n/courses – Ihre Kursliste\n"
        "/profile – was ich über Sie weiß\n/language – Antwortsprache\n/reset – von vorne beginnen",
    },
    "fb_like": {"en": "👍 Noted: you like “{title}”.", "de": "👍 Notiert: „{title}“ gefällt Ihnen."},
    "fb_dislike": {
        "en": "👎 Noted: I won't suggest “{title}” again.",
        "de": "👎 Notiert: „{title}“ schlage ich nicht mehr vor.",
    },
    "fb_taken": {
        "en": "✅ Noted: you've done “{title}”; its skills count as yours.",
        "de": "✅ Notiert: „{title}“ haben Sie schon gemacht; die Fähigkeiten zählen als Ihre.",
    },
    "taken_button": {"en": "done", "de": "gemacht"},
}

LEVELS: dict[Lang, dict[str, str]] = {
    "en": {"beginner": "beginner", "intermediate": "intermediate", "advanced": "advanced",
           "mixed": "all levels"},
    "de": {"beginner": "Anfänger", "intermediate": "Mittelstufe", "advanced": "Fortgeschrittene",
           "mixed": "alle Niveaus"},
}  # fmt: skip
LANGUAGE_NAMES: dict[Lang, dict[str, str]] = {
    "en": {"en": "English", "de": "German"},
    "de": {"en": "Englisch", "de": "Deutsch"},
}


def text(key: str, lang: Lang, **values: object) -> str:
    """One of the channel's own sentences (plain text: escape before mixing it into HTML)."""
    return TEXTS[key][lang].format(**values)


def escape(value: str) -> str:
    """Text for Telegram HTML: only ``<``, ``>`` and ``&`` are special outside attributes."""
    return html.escape(value, quote=False)


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) link (no ``javascript:`` or relative links in a message)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def link(label: str, url: str | None) -> str:
    """A bold title, linked when the URL is safe."""
    bold = f"<b>{escape(label)}</b>"
    target = safe_url(url)
    return f'<a href="{html.escape(target, quote=True)}">{bold}</a>' if target else bold


# --- the agent's replies ---------------------------------------------------------------------------

_COURSE_LINE = re.compile(r"^(\d{1,2})\. \*\*(.+?)\*\*(.*?)(?: — (\S+))?$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def to_html(reply: str) -> str:
    """The agent's reply (plain text with ``**bold**`` and course lines ``1. **Title** (facts) — URL``) as
    Telegram HTML: course lines become numbered items with the title linked to the course page."""
    lines = []
    for line in reply.split("\n"):
        match = _COURSE_LINE.match(line)
        if match and safe_url(match.group(4)):
            number, title, facts, url = match.groups()
            lines.append(f"{number}. {link(title, url)}{escape(facts)}")
        else:
            lines.append(_BOLD.sub(r"<b>\1</b>", escape(line)))
    return "\n".join(lines)


# --- views of the state ----------------------------------------------------------------------------


def course_item(number: int, course: ShownCourse, lang: Lang) -> str:
    """One numbered course: linked title, provider · price · level, its explanation and the gap skills it
    covers."""
    facts = [course.provider] if course.provider else []
    if course.free:
        facts.append(text("free", lang))
    elif course.price is not None:
        facts.append(f"{course.price:g} {course.currency or ''}".strip())
    if course.level and course.level != "unknown":
        facts.append(LEVELS[lang].get(course.level, course.level))
    item = f"{number}. {link(course.title, course.url)}"
    if facts:
        item += f" ({escape(' · '.join(facts))})"
    if course.explanation:
        item += f"\n   {escape(course.explanation)}"
    if course.covers:
        labels = ", ".join(s.label for s in course.covers[:6])
        item += f"\n   <i>{escape(text('covers', lang))}: {escape(labels)}</i>"
    return item


def current_courses(state: AdvisorState) -> list[ShownCourse]:
    """The latest list, in the order shown."""
    by_id = {c.course_id: c for c in state.shown}
    return [by_id[cid] for cid in state.current if cid in by_id]


def course_list(state: AdvisorState) -> str:
    """The current list again (``/courses``), headed by the goal."""
    lang = state.language
    label = state.occupation.label if state.occupation else ""
    items = [course_item(i, c, lang) for i, c in enumerate(current_courses(state), 1)]
    return escape(text("courses_head", lang, label=label)) + "\n\n" + "\n\n".join(items)


def filter_tags(prefs: Preferences, lang: Lang) -> list[str]:
    """The active preferences in the conversation's language."""
    tags = []
    if prefs.free_only:
        tags.append(text("free", lang))
    if prefs.price_max is not None:
        tags.append(f"≤ {prefs.price_max:g}")
    if prefs.languages:
        tags.append("/".join(LANGUAGE_NAMES[lang].get(code, code) for code in prefs.languages))
    if prefs.levels:
        tags.append("/".join(LEVELS[lang].get(level, level) for level in prefs.levels))
    if prefs.formats:
        tags.append("/".join(prefs.formats))
    if prefs.location:
        tags.append(prefs.location)
    if prefs.hours_per_week:
        tags.append(f"{prefs.hours_per_week:g} h/" + ("week" if lang == "en" else "Woche"))
    return tags


def profile(state: AdvisorState) -> str:
    """Goal, skills, skipped topics, gap size and filters: what the advisor knows, read from the state (no
    agent turn, so asking does not change the conversation)."""
    lang = state.language
    none = text("none", lang)

    def row(key: str, value: str) -> str:
        return f"<b>{escape(text(key, lang))}:</b> {escape(value)}"

    goal = state.occupation.label if state.occupation else text("not_set", lang)
    rows = [f"<b>{escape(text('profile_head', lang))}</b>", row("goal", goal)]
    if state.candidates and state.occupation is None:
        rows.append(row("candidates", ", ".join(c.label for c in state.candidates)))
    rows.append(row("skills", ", ".join(s.label for s in state.skills_have) or none))
    skipped = [s.label for s in state.skills_skip if s.uri] or [s.wording for s in state.skills_skip]
    rows.append(row("skip", ", ".join(skipped) or none))
    if state.occupation is not None:
        essential = sum(1 for g in state.gap if g.essential)
        rows.append(row("gap", text("gap_size", lang, n=len(state.gap), essential=essential)))
    rows.append(row("filters", ", ".join(filter_tags(state.preferences, lang)) or none))
    return "\n".join(rows)


def next_step(state: AdvisorState) -> str:
    """What the user can do next (after "welcome back")."""
    if state.occupation is None:
        return text("next_goal", state.language)
    if state.current:
        return text("next_courses", state.language)
    if not state.skills_done:
        return text("next_skills", state.language)
    return text("next_courses", state.language)


# --- splitting -------------------------------------------------------------------------------------

_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")
_ENTITY = re.compile(r"&#?\w+;")
_BREAKS = ("\n\n", "\n", " ")


def size(value: str) -> int:
    """Length as Telegram counts it (UTF-16 code units), never less than ``len``."""
    return len(value.encode("utf-16-le")) // 2


def _inside_markup(value: str, pos: int) -> bool:
    """True when a cut at ``pos`` would fall inside a tag or an entity."""
    if value.rfind("<", 0, pos) > value.rfind(">", 0, pos):
        return True
    amp = value.rfind("&", 0, pos)
    if amp >= 0:
        entity = _ENTITY.match(value, amp)
        if entity is not None and amp < pos < entity.end():
            return True
    return False


def _open_tags(prefix: str) -> list[tuple[str, str]]:
    """Tags opened and not yet closed in ``prefix``: (name, the opening tag as written)."""
    stack: list[tuple[str, str]] = []
    for match in _TAG.finditer(prefix):
        closing, name = match.group(1), match.group(2).lower()
        if not closing:
            stack.append((name, match.group(0)))
        else:
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] == name:
                    del stack[i:]
                    break
    return stack


def _fits(value: str, budget: int) -> int:
    """The longest prefix length of ``value`` whose size is within ``budget``."""
    if size(value) <= budget:
        return len(value)
    low, high = 0, min(len(value), budget)
    while low < high:
        mid = (low + high + 1) // 2
        if size(value[:mid]) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def _break(value: str, end: int, floor: int) -> int:
    """The best cut at or before ``end``: a paragraph, a line, a space, else any point outside markup."""
    for sep in _BREAKS:
        pos = value.rfind(sep, 0, end)
        while pos > floor and _inside_markup(value, pos):
            pos = value.rfind(sep, 0, pos)
        if pos > floor:
            return pos
    pos = end
    while pos > floor and _inside_markup(value, pos):
        pos -= 1
    return pos if pos > floor else end


def split(value: str, limit: int = LIMIT) -> list[str]:
    """Pieces of at most ``limit`` (UTF-16 units), each valid HTML on its own."""
    pieces: list[str] = []
    rest = value.strip()
    while size(rest) > limit:
        budget = limit
        while True:
            end = _fits(rest, budget)
            floor = max(1, end // 4)
            cut = _break(rest, end, floor)
            stack = _open_tags(rest[:cut])
            head = rest[:cut].rstrip() + "".join(f"</{name}>" for name, _ in reversed(stack))
            if size(head) <= limit or budget <= limit // 2:
                break
            budget -= size(head) - limit
        tail = rest[cut:].lstrip()
        pieces.append(head)
        rest = "".join(tag for _, tag in stack) + tail
    if rest.strip():
        pieces.append(rest)
    return pieces
