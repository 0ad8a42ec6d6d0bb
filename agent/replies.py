"""Every sentence the advisor says, in English and German. Replies are composed from these and from catalog
and ESCO facts only — no free-form model text reaches the user except validated explanations — so a prompt
can never leak and a reply can never name a course or skill that does not exist."""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.state import Lang

TEXTS: dict[str, dict[Lang, str]] = {
    "welcome": {
        "en": "Hi! I'm CRAFT, your course advisor. Tell me the job you'd like to have, for example "
        "\"I'd like to become a data analyst\", and I'll find courses for the skills you still need.",
        "de": "Hallo! Ich bin CRAFT, Ihr Kursberater. Nennen Sie mir den Beruf, den Sie anstreben, zum "
        "Beispiel „Ich möchte Datenanalyst werden“, und ich suche Kurse für die Fähigkeiten, die Ihnen noch "
        "fehlen.",
    },
    "welcome_back": {
        "en": "Hello again! We are working towards **{label}**.",
        "de": "Willkommen zurück! Ihr Ziel ist **{label}**.",
    },
    "help": {
        "en": "I can: find the ESCO occupation you aim for, work out the skills it needs, and recommend real "
        'courses for the ones you are missing. You can say things like "only free courses", "in German", '
        '"more beginner", "I already know SQL", "not interested in Excel", "why the second one?" or '
        '"start over".',
        "de": "Ich kann: den ESCO-Beruf finden, den Sie anstreben, die nötigen Fähigkeiten ermitteln und "
        "echte Kurse für die fehlenden empfehlen. Sie können z. B. sagen: „nur kostenlose Kurse“, "
        "„auf Englisch“, „eher für Anfänger“, „SQL kann ich schon“, „kein Interesse an Excel“, "
        "„warum der zweite?“ oder „von vorne“.",
    },
    "ask_goal": {
        "en": 'Which job would you like to have? Tell me its title, e.g. "nurse" or "web developer".',
        "de": "Welchen Beruf möchten Sie ausüben? Nennen Sie die Berufsbezeichnung, z. B. „Pflegefachkraft“ "
        "oder „Softwareentwickler“.",
    },
    "unknown_occupation": {
        "en": 'I couldn\'t find an occupation matching "{text}" in ESCO. Could you describe it with '
        "another job title?",
        "de": "Zu „{text}“ habe ich keinen Beruf in ESCO gefunden. Können Sie ihn mit einer anderen "
        "Berufsbezeichnung beschreiben?",
    },
    "choose": {
        "en": 'I found several occupations for "{text}". Which one do you mean? Reply with the number.',
        "de": "Zu „{text}“ passen mehrere Berufe. Welchen meinen Sie? Antworten Sie mit der Nummer.",
    },
    "bad_choice": {
        "en": "Please pick a number between 1 and {n}, or type the job title.",
        "de": "Bitte wählen Sie eine Nummer zwischen 1 und {n} oder schreiben Sie die Berufsbezeichnung.",
    },
    "goal_set": {
        "en": "Great, your goal is **{label}**. It needs {essential} essential skills{optional}.",
        "de": "Gut, Ihr Ziel ist **{label}**. Dafür braucht man {essential} wesentliche "
        "Fähigkeiten{optional}.",
    },
    "goal_optional": {"en": " and {n} optional ones", "de": " und {n} optionale"},
    "ask_skills": {
        "en": "What do you already know? List some skills, tools or past jobs (or paste your CV). "
        'Say "nothing yet" and I\'ll recommend courses right away.',
        "de": "Was können Sie schon? Nennen Sie Fähigkeiten, Werkzeuge oder frühere Tätigkeiten (oder fügen "
        "Sie Ihren Lebenslauf ein). Mit „noch nichts“ empfehle ich sofort Kurse.",
    },
    "skills_understood": {
        "en": "I understood that you know: {skills}.",
        "de": "Verstanden, Sie können bereits: {skills}.",
    },
    "skills_none_found": {
        "en": "I couldn't match \"{text}\" to skills in ESCO; I'll leave it out.",
        "de": "„{text}“ konnte ich keiner ESCO-Fähigkeit zuordnen; ich lasse es weg.",
    },
    "skills_relevant": {
        "en": "{n} of them are skills a {label} needs.",
        "de": "{n} davon braucht man als {label}.",
    },
    "skip_understood": {
        "en": "Noted, no courses about {skills}.",
        "de": "Notiert, keine Kurse zu {skills}.",
    },
    "prefs_understood": {
        "en": "Filters now: {tags}.",
        "de": "Aktive Filter: {tags}.",
    },
    "prefs_cleared_cheaper": {
        "en": "I don't know the prices of the courses shown, so I'm showing free ones.",
        "de": "Die Preise der gezeigten Kurse sind unbekannt, daher zeige ich kostenlose.",
    },
    "gap": {
        "en": "You are missing {essential} essential skills (e.g. {examples}).",
        "de": "Ihnen fehlen {essential} wesentliche Fähigkeiten (z. B. {examples}).",
    },
    "no_gap": {
        "en": "You already have every essential skill of a {label}; the courses below deepen optional ones.",
        "de": "Sie haben bereits alle wesentlichen Fähigkeiten als {label}; die Kurse vertiefen optionale.",
    },
    "intro": {
        "en": "Here are {n} courses for becoming a {label}:",
        "de": "Hier sind {n} Kurse auf dem Weg zum Beruf {label}:",
    },
    "few": {
        "en": "Only {n} courses in the catalog match your filters ({tags}); I'm not filling up the list with "
        "courses that break them.",
        "de": "Nur {n} Kurse im Katalog passen zu Ihren Filtern ({tags}); ich fülle die Liste nicht mit "
        "Kursen auf, die sie verletzen.",
    },
    "none": {
        "en": "No course in the catalog matches your filters ({tags}). Try relaxing one of them.",
        "de": "Kein Kurs im Katalog passt zu Ihren Filtern ({tags}). Lockern Sie einen davon.",
    },
    "live_hint": {
        "en": "With an internet connection I can also search the Weiterbildungssuche of the Bundesagentur "
        "für Arbeit for German courses.",
        "de": "Mit Internetverbindung kann ich zusätzlich in der Weiterbildungssuche der Bundesagentur für "
        "Arbeit nach deutschen Kursen suchen.",
    },
    "coverage": {
        "en": "Together these courses cover {covered} of the {total} essential skills you are missing.",
        "de": "Zusammen decken diese Kurse {covered} der {total} fehlenden wesentlichen Fähigkeiten ab.",
    },
    "coverage_missing": {
        "en": "Still open: {skills}.",
        "de": "Noch offen: {skills}.",
    },
    "path": {
        "en": "Suggested order: {steps}.",
        "de": "Empfohlene Reihenfolge: {steps}.",
    },
    "refine_hint": {
        "en": 'Tell me if you want them cheaper, free, in German, more beginner-friendly, or ask "why the '
        'first one?".',
        "de": "Sagen Sie mir, ob sie günstiger, kostenlos, auf Englisch oder einsteigerfreundlicher sein "
        "sollen, oder fragen Sie „warum der erste?“.",
    },
    "no_list": {
        "en": "I haven't recommended any courses yet.",
        "de": "Ich habe noch keine Kurse empfohlen.",
    },
    "bad_ref": {
        "en": "There are only {n} courses in the list; which one do you mean?",
        "de": "Die Liste hat nur {n} Kurse; welchen meinen Sie?",
    },
    "liked": {
        "en": 'Glad you like "{title}". I\'ll keep it in mind.',
        "de": "Schön, dass Ihnen „{title}“ gefällt. Ich merke es mir.",
    },
    "disliked": {
        "en": 'Understood, I won\'t suggest "{title}" again.',
        "de": "Verstanden, „{title}“ schlage ich nicht mehr vor.",
    },
    "taken": {
        "en": "Good, you've done \"{title}\"; I'll count its skills as yours and not show it again.",
        "de": "Gut, „{title}“ haben Sie schon gemacht; ich rechne Ihnen die Fähigkeiten an und zeige ihn "
        "nicht mehr.",
    },
    "more_like": {
        "en": 'More courses like "{title}":',
        "de": "Weitere Kurse wie „{title}“:",
    },
    "why_head": {
        "en": 'Why "{title}":',
        "de": "Warum „{title}“:",
    },
    "why_facts": {
        "en": "It teaches {n} of your missing skills{skills}.",
        "de": "Er vermittelt {n} Ihrer fehlenden Fähigkeiten{skills}.",
    },
    "why_no_facts": {
        "en": "It teaches none of your missing skills directly; it was chosen because its content is close "
        "to your goal.",
        "de": "Er vermittelt keine Ihrer fehlenden Fähigkeiten direkt; er wurde gewählt, weil sein Inhalt "
        "Ihrem Ziel nahekommt.",
    },
    "profile": {
        "en": "Your goal: {goal}. Skills you have: {have}. Not interested in: {skip}. Filters: {tags}.",
        "de": "Ihr Ziel: {goal}. Ihre Fähigkeiten: {have}. Kein Interesse an: {skip}. Filter: {tags}.",
    },
    "nothing": {"en": "none", "de": "keine"},
    "not_set": {"en": "not set yet", "de": "noch nicht festgelegt"},
    "reset": {
        "en": "Okay, let's start over. Which job would you like to have?",
        "de": "In Ordnung, wir fangen von vorne an. Welchen Beruf möchten Sie ausüben?",
    },
    "language": {
        "en": "Sure, I'll answer in English from now on.",
        "de": "Gern, ich antworte ab jetzt auf Deutsch.",
    },
    "answer_occupation": {
        "en": "A **{label}** needs these essential skills: {skills}.",
        "de": "Als **{label}** braucht man diese wesentlichen Fähigkeiten: {skills}.",
    },
    "answer_skill": {
        "en": "**{label}** (ESCO {kind}): {description}",
        "de": "**{label}** (ESCO-{kind}): {description}",
    },
    "answer_unknown": {
        "en": 'I don\'t know "{text}" as an occupation or skill in ESCO.',
        "de": "„{text}“ kenne ich in ESCO weder als Beruf noch als Fähigkeit.",
    },
    "too_long": {
        "en": "That message is {n:,} characters long; please send at most {max:,} characters at a time.",
        "de": "Diese Nachricht ist {n:,} Zeichen lang; bitte senden Sie höchstens {max:,} Zeichen auf "
        "einmal.",
    },
    "not_understood": {
        "en": "I'm not sure what you mean.",
        "de": "Das habe ich nicht ganz verstanden.",
    },
    "explanations_missing": {
        "en": "(Explanations are not available right now.)",
        "de": "(Begründungen sind gerade nicht verfügbar.)",
    },
}

PREFERENCE_WORDS: dict[str, dict[Lang, str]] = {
    "free": {"en": "free", "de": "kostenlos"},
    "price": {"en": "price ≤ {v}", "de": "Preis ≤ {v}"},
    "language": {"en": "taught in {v}", "de": "Sprache {v}"},
    "level": {"en": "level {v}", "de": "Niveau {v}"},
    "format": {"en": "{v}", "de": "{v}"},
    "location": {"en": "near {v}", "de": "in der Nähe von {v}"},
    "hours": {"en": "{v} h/week", "de": "{v} Std./Woche"},
}
LANGUAGE_NAMES: dict[Lang, dict[str, str]] = {
    "en": {"en": "English", "de": "German"},
    "de": {"en": "Englisch", "de": "Deutsch"},
}
LEVEL_NAMES: dict[Lang, dict[str, str]] = {
    "en": {"beginner": "beginner", "intermediate": "intermediate", "advanced": "advanced",
           "mixed": "all levels"},
    "de": {"beginner": "Anfänger", "intermediate": "Mittelstufe", "advanced": "Fortgeschrittene",
           "mixed": "alle Niveaus"},
}  # fmt: skip
FREE_WORD: dict[Lang, str] = {"en": "free", "de": "kostenlos"}


def say(key: str, lang: Lang, **values: object) -> str:
    return TEXTS[key][lang].format(**values)


def join(items: Sequence[str], lang: Lang, limit: int = 6) -> str:
    """ "a, b and c" (German "und"); more than ``limit`` items end in "and N more"."""
    items = list(items)
    if not items:
        return TEXTS["nothing"][lang]
    more = len(items) - limit
    shown = items[:limit]
    word = "and" if lang == "en" else "und"
    if more > 0:
        tail = f"{more} more" if lang == "en" else f"{more} weitere"
        return ", ".join(shown) + f" {word} {tail}"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + f" {word} {shown[-1]}"


_TAG = re.compile(r"<[^>]{0,200}>")
_UNSAFE = re.compile(r"[<>`*_\[\]\x00-\x1f\x7f]")


def quote(text: str, limit: int = 60) -> str:
    """User words echoed back: tags and markup characters removed, one line, at most ``limit`` chars."""
    clean = _UNSAFE.sub(" ", _TAG.sub(" ", text))
    clean = " ".join(clean.split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"
