"""The default understanding path: deterministic EN/DE parsing of a message into a ``TurnUpdate``.

Rules catch what is said the same way every time (reset, "only free", "the second one", "why this one?",
"I already know SQL", "not interested in Excel"); what is left is read by the conversation phase — a job
title while there is no goal, a skill list (or a pasted CV) while the advisor asks for skills. Resolving the
phrases to ESCO is left to the lookup tools (embedding + lexical linking), as on the LLM path.
"""

from __future__ import annotations

import re
from functools import lru_cache

from agent.state import AdvisorState, Lang, Phase
from agent.updates import MAX_PHRASES, Intent, PreferenceChange, TurnUpdate

_I = re.IGNORECASE

_GERMAN_STEMS = {"erst": 1, "zweit": 2, "dritt": 3, "viert": 4, "fünft": 5, "sechst": 6, "siebt": 7, "acht": 8,
                 "neunt": 9, "zehnt": 10, "letzt": -1}  # fmt: skip
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "last": -1, "top": 1,
    **{stem + ending: n for stem, n in _GERMAN_STEMS.items() for ending in ("e", "en", "er", "es", "em")},
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "eins": 1, "zwei": 2, "drei": 3, "vier": 4,
    "fünf": 5,
}  # fmt: skip
_ORD = "|".join(sorted(ORDINALS, key=len, reverse=True))
_REF = re.compile(
    rf"(?:\b(?:the|that|this|die|der|das|den|dem|course|kurs|nummer|number|no\.?|nr\.?)\s+)?"
    rf"(?:\b({_ORD})\b|#\s*(\d{{1,2}})\b|\b(?:course|kurs|nummer|number|no\.?|nr\.?)\s*(\d{{1,2}})\b)",
    _I,
)
_BARE_NUMBER = re.compile(r"^\s*(?:#|nr\.?|no\.?|nummer|number)?\s*(\d{1,2})\s*[.!)]?\s*$", _I)
_BARE_ORDINAL = re.compile(rf"^\s*(?:(?:the|die|der|das|den)\s+)?({_ORD})(?:\s+(?:one|eins|option|bitte|please))?"
                           r"\s*[.!]?\s*$", _I)  # fmt: skip

RESET = re.compile(
    r"\b(start (?:over|again|from scratch)|restart|reset|new conversation|von (?:vorne|vorn)|neu anfangen"
    r"|neustart|noch ?mal von vorne|zurücksetzen|alles löschen)\b",
    _I,
)
_SPEAK = (
    r"(?:speak|answer|reply|talk|write|respond|antworte|antworten|sprich|sprechen|schreib|schreiben|rede)"
)
LANGUAGE_SWITCH = re.compile(
    rf"\b{_SPEAK}\b.*\b(?:in|auf)\s+(english|englisch|german|deutsch)\b"
    rf"|\b(?:in|auf)\s+(english|englisch|german|deutsch)\s+(?:please|bitte)?\s*{_SPEAK}?\s*[.!]?$"
    rf"|^\s*(english|englisch|german|deutsch)\s*(?:please|bitte)?\s*[.!]?\s*$",
    _I,
)
_COURSE_WORDS = r"(?:courses?|kurse?n?|kursen|weiterbildung(?:en)?|trainings?|schulung(?:en)?|lessons?)"
COURSE_LANGUAGE = re.compile(
    rf"\b(?:only\s+|nur\s+)?(english|englisch\w*|german|deutsch\w*)\s+{_COURSE_WORDS}"
    rf"|{_COURSE_WORDS}\b.{{0,20}}\b(?:in|auf)\s+(english|englisch|german|deutsch)\b"
    r"|^\s*(?:only\s+|nur\s+|and\s+|und\s+)?(?:in|auf)\s+(english|englisch|german|deutsch)\s*(?:please|bitte)?\s*[.!?]?\s*$",
    _I,
)
FREE = re.compile(r"\b(free(?:\s+of\s+charge)?|no[- ]cost|kostenlos\w*|gratis|umsonst|kostenfrei\w*)\b", _I)
CHEAPER = re.compile(r"\b(cheaper|less expensive|lower price|not so expensive|günstiger\w*|billiger\w*"
                     r"|preiswerter\w*|zu teuer|too expensive)\b", _I)  # fmt: skip
PRICE = re.compile(
    r"\b(?:under|below|less than|max(?:imum)?|at most|up to|no more than|bis|unter|höchstens|maximal"
    r"|weniger als)\s*(?:€|\$|eur\s|euro\s)?\s*(\d{1,5}(?:[.,]\d{1,2})?)\s*(?:€|eur\b|euros?\b|\$|usd\b|dollars?\b)?",
    _I,
)
LEVELS: dict[str, re.Pattern[str]] = {
    "beginner": re.compile(r"\b(beginners?|easier|more basic|simpler|basics|introductory|entry[- ]level"
                           r"|einfacher\w*|anfänger\w*|grundlagen|einsteiger\w*|leichter\w*)\b", _I),
    "advanced": re.compile(r"\b(advanced|harder|more challenging|expert|fortgeschritten\w*"
                           r"|anspruchsvoller\w*|schwieriger\w*|profi)\b", _I),
    "intermediate": re.compile(r"\b(intermediate|mittelstufe|mittleres niveau)\b", _I),
}  # fmt: skip
ONLINE = re.compile(r"\b(online|remote|e-?learning|fernunterricht|fernkurs\w*|virtuell\w*)\b", _I)
IN_PERSON = re.compile(
    r"\b(in[- ]person|on[- ]site|onsite|classroom|face[- ]to[- ]face|präsenz\w*|vor ort)\b", _I
)
LOCATION = re.compile(
    r"\b(?:near|around|close to|in der nähe von|nahe|im raum|in)\s+([A-ZÄÖÜ][\wäöüß-]{2,}(?:\s+[A-ZÄÖÜ][\wäöüß-]+)?)"
)
HOURS = re.compile(r"\b(\d{1,2}(?:[.,]5)?)\s*(?:h|hrs?|hours?|stunden|std\.?)\s*(?:a|per|/|pro|die|in der|each)\s*"
                   r"(?:week|woche)\b", _I)  # fmt: skip

SKIP = re.compile(
    r"(?:\bnot interested in|\bno interest in|\bi don'?t (?:want|need|care about|like)|\bskip|\bwithout"
    r"|\bno more|\bnothing (?:about|with)|\bkein(?:e|en)? interesse an|\bnicht interessiert an|\bohne"
    r"|\bkeine? (?=\w+[- ]?kurse)|\bich (?:will|möchte|brauche) kein(?:e|en)?)\s+(.+)",
    _I,
)
HAVE = re.compile(
    r"(?:\bi (?:already |also )?(?:know|can(?! you)|have (?:experience|skills|knowledge) (?:in|with|of)"
    r"|have done|did|am (?:good|experienced) (?:at|in|with)|worked (?:with|as|in)|use|used|learned|learnt"
    r"|studied|speak)|\bmy skills(?: are)?:?|\bskills:|\bich (?:kann|kenne|beherrsche|spreche)(?: schon| bereits)?"
    r"|\bich habe (?:schon |bereits )?(?:erfahrung|kenntnisse) (?:in|mit|im)"
    r"|\b(?:gute |grundlegende |sehr gute )?kenntnisse (?:in|im)|\bmeine kenntnisse:?)\s+(.+)",
    _I,
)
HAVE_AFTER = re.compile(
    r"^\s*(.+?)\s+(?:kann|kenne|beherrsche|spreche) ich(?: schon| bereits| auch)?\b"
    r"|^\s*(.+?)\s+(?:i (?:already |also )?(?:know|can do|have done))\b",
    _I,
)
SKIP_AFTER = re.compile(
    r"^\s*(.+?)\s+(?:interessiert mich nicht|brauche ich nicht|is not for me|doesn'?t interest me)\b", _I
)
GOAL = re.compile(
    r"(?:\bi(?:'d| would)? (?:like|want|wish|hope|plan|aim) to (?:become|be|work as|train as|get a job as"
    r"|switch to|move into)|\bi'?m (?:interested in becoming|aiming to become|looking to become)"
    r"|\b(?:rather|instead) (?:become|be|work as)|\bmy (?:goal|dream|target)(?: job)? is(?: to become| to be)?"
    r"|\bbecome|\bworking as|\bich (?:möchte|will|würde gerne?|wäre gerne?)(?: gerne?)?(?: als)?"
    r"|\bmein (?:ziel|traumberuf|wunschberuf) ist|\bberuf:|\bziel:|\blieber)\s+(.+)",
    _I,
)
_GOAL_TAIL = re.compile(
    r"\s*(?:werden|arbeiten|sein|machen)\b.*$|[,.;!?]\s*(?:and|und|but|aber|i|ich)\b.*$|[.!?]+\s*$"
    r"|\s+(?:and|und) (?:i|ich)\b.*$",
    _I,
)
_ARTICLE = re.compile(r"^(?:an?|the|ein(?:e|en)?|der|die|das)\s+", _I)
_FILLER = re.compile(
    r"^(?:(?:lieber|doch|eher|jetzt|stattdessen|rather|instead|actually|now|then)\s+)+"
    r"|(?:\s+(?:instead|then|now|after all|stattdessen|lieber|doch))+$",
    _I,
)
_NOT_A_JOB = re.compile(r"^(?:kein\w*|nicht|nichts|no|not|nothing|mehr|more|etwas|something|nur|only)\b", _I)
_HEADER = re.compile(r"^[\wäöüß /&-]{2,30}:\s*")
WHY = re.compile(r"\b(why|how come|wieso|warum|weshalb)\b", _I)
MORE_LIKE = re.compile(r"\b(more like|similar to|something like|mehr wie|mehr davon|ähnlich wie"
                       r"|so wie|ähnliche)\b", _I)  # fmt: skip
LIKE = re.compile(r"(\b(?:i like|sounds good|looks good|great|perfect|love|gefällt mir|klingt gut|super"
                  r"|passt)\b|👍)", _I)  # fmt: skip
DISLIKE = re.compile(r"(\b(?:i don'?t like|not (?:for me|that one|this one|the)|dislike|boring|not interested in the"
                     r"|gefällt mir nicht|nicht (?:der|die|das|den)|nicht so|passt nicht)\b|👎)", _I)  # fmt: skip
TAKEN = re.compile(r"\b(already (?:took|taken|done|did|completed|finished)|i (?:took|did|completed|finished)"
                   r"|schon gemacht|bereits gemacht|habe ich schon|schon absolviert)\b", _I)  # fmt: skip
QUESTION = re.compile(
    r"\b(?:what (?:does|do|skills does|skills do|is|are|should)|which skills|tell me about|explain"
    r"|was (?:braucht|brauchen|macht|machen|ist|sind|muss)|welche (?:fähigkeiten|kenntnisse|skills)"
    r"|erkläre?|erzähl mir (?:etwas )?über)\b",
    _I,
)
_TOPIC = re.compile(
    r"\b(?:an?|the|ein(?:e|en)?|der|die|das|as an?|als)\s+([\wäöüß/ -]+?)(?:\s+(?:need|do|know|brauch\w*|mach\w*"
    r"|wissen|können|können muss)\b|[?.!]|$)"
    r"|\b(?:about|is|are|über|ist)\s+([\wäöüß/ -]+?)\s*[?.!]*$",
    _I,
)
RECOMMEND = re.compile(
    r"\b(courses?|recommend\w*|suggest\w*|what should i (?:learn|study|take)|where (?:do|should) i start"
    r"|show me|kurse?n?|weiterbildung\w*|empfiehl\w*|empfehl\w*|vorschl\w*|zeig mir|was soll ich lernen"
    r"|schulung\w*|lehrg[aä]ng\w*)\b",
    _I,
)
NONE = re.compile(
    r"^\s*(?:no(?:ne|thing)?(?: yet| really| at all)?|not really|nope|i don'?t know anything|no skills"
    r"|i'?m a beginner|nichts(?: davon)?|noch nichts|keine(?: ahnung)?|nein|gar nichts|keine kenntnisse"
    r"|ich bin anfänger\w*|skip|weiter|next)\s*[.!]*\s*$",
    _I,
)
GREET = re.compile(r"^\s*(hi|hello|hey|hallo|moin|servus|guten (?:tag|morgen|abend)|good (?:morning|evening))"
                   r"\b[\s!.,]*$", _I)  # fmt: skip
HELP = re.compile(r"\b(help|hilfe|what can you do|was kannst du|how does this work|wie funktioniert)\b", _I)
PROFILE = re.compile(r"\b(my profile|what do you know about me|mein profil|was weißt du über mich"
                     r"|was wissen sie über mich|summary|zusammenfassung)\b", _I)  # fmt: skip
SHORT = 120  # commands (reset, language, profile) are short; a longer message that contains one is content

GERMAN_HINTS = re.compile(r"[äöüß]|\b(ich|und|nicht|werden|möchte|kurse|kenntnisse|bitte|keine|kann)\b", _I)


@lru_cache(maxsize=1)
def _detector() -> object:
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.GERMAN).build()


GERMAN_ONLY = {"hallo", "moin", "servus", "danke", "nein", "tschüss", "genau", "bitte", "gerne"}


def detect_language(text: str, current: Lang) -> Lang:
    """EN or DE; short or mixed text ("data analyst", "SQL") keeps the current language."""
    words = re.findall(r"[^\W\d_]+", text)
    if words and all(w.casefold() in GERMAN_ONLY for w in words):  # "Hallo" reads as English to the detector
        return "de"
    if len(words) < 2 and not GERMAN_HINTS.search(text):
        return current
    values = _detector().compute_language_confidence_values(text)  # type: ignore[attr-defined]
    best = values[0]
    if best.value < 0.8:
        return current
    return "de" if best.language.name == "GERMAN" else "en"


def _lang_word(word: str) -> Lang:
    return "de" if word.lower().startswith(("german", "deutsch")) else "en"


def course_ref(text: str) -> int | None:
    """1-based position named in the text ("the second one", "#3", "Kurs 2"); -1 for "the last one"."""
    match = _REF.search(text)
    if match is None:
        return None
    if match.group(1):
        return ORDINALS[match.group(1).lower()]
    return int(match.group(2) or match.group(3))


def bare_choice(text: str) -> int | None:
    """A message that is only a pick: "2", "#2", "the second one", "die zweite"."""
    if m := _BARE_NUMBER.match(text):
        return int(m.group(1))
    if m := _BARE_ORDINAL.match(text):
        return ORDINALS[m.group(1).lower()]
    return None


def preferences(text: str) -> PreferenceChange:
    change: dict[str, object] = {}
    if FREE.search(text) and not re.search(r"\bfree time|freizeit|feel free\b", text, _I):
        change["free_only"] = True
    if CHEAPER.search(text):
        change["cheaper"] = True
    if m := PRICE.search(text):
        change["price_max"] = float(m.group(1).replace(",", "."))
    if m := COURSE_LANGUAGE.search(text):
        word = next(g for g in m.groups() if g)
        change["languages"] = [_lang_word(word)]
    for level, pattern in LEVELS.items():
        if pattern.search(text):
            change["level"] = level
            break
    formats = []
    if ONLINE.search(text):
        formats.append("online")
    if IN_PERSON.search(text):
        formats.append("in-person")
    if formats:
        change["formats"] = formats
    place = m.group(1) if (m := LOCATION.search(text)) else None
    nearby = "formats" in change or re.search(r"\b(near|around|close to|nähe|nahe|im raum)\b", text, _I)
    if place and nearby and place.lower() not in {"german", "english", "deutsch", "englisch"}:
        change["location"] = place
    if m := HOURS.search(text):
        change["hours_per_week"] = float(m.group(1).replace(",", "."))
    return PreferenceChange.model_validate(change)


def _split(text: str) -> list[str]:
    parts = re.split(r"\s*(?:,|;|/|\band\b|\bund\b|\bas well as\b|\bsowie\b|\bplus\b)\s*", text, flags=_I)
    return [p.strip(" .") for p in parts if p and p.strip(" .")]


def is_cv(text: str) -> bool:
    """A pasted CV or skill list: several lines, or a long text."""
    return "\n" in text.strip() or len(text) > 300


def _phrases(text: str) -> list[str]:
    """Skill phrases of a list or sentence. A pasted CV is read line by line, each line a list ("Skills: Java,
    SQL"; long items stay whole for the skill finder); one long paragraph is kept whole."""
    text = text.strip().rstrip(".!")
    if "\n" not in text:
        return [text] if len(text) > 300 else _split(text)
    phrases: list[str] = []
    for raw in text.splitlines():
        line = raw.strip(" \t-•*·–")
        if not line or GOAL.search(line) or GREET.match(line):
            continue
        if m := HAVE.search(line):
            line = m.group(1)
        phrases += _split(_HEADER.sub("", line))
    if len(phrases) > MAX_PHRASES:  # a long CV: the finder reads it whole (in chunks)
        return [text]
    return phrases


def occupation_phrase(text: str) -> str:
    text = _GOAL_TAIL.sub("", text.strip())
    text = _FILLER.sub("", text.strip(" .!?,\"'")).strip()
    return _ARTICLE.sub("", text).strip()


def _job_phrase(phrase: str) -> bool:
    """False for what follows "I want ..." when it is no job ("nur kostenlose Kurse", "keine Excel-Kurse")."""
    if not phrase or len(phrase.split()) > 8 or _NOT_A_JOB.match(phrase) or RECOMMEND.search(phrase):
        return False
    change = preferences(phrase)  # level and format words are part of titles ("online community manager")
    return not (
        change.free_only or change.cheaper or change.price_max or change.languages or change.hours_per_week
    )


def _goal(text: str) -> str | None:
    """The job named after "I want to become ..."; a clause after a comma may be a filter ("a baker, only free
    courses") rather than part of the title."""
    if (m := GOAL.search(text)) is None:
        return None
    for words in (m.group(1), re.split(r"[,;]", m.group(1))[0]):
        if _job_phrase(phrase := occupation_phrase(words)):
            return phrase
    return None


def _topic(text: str) -> str | None:
    m = _TOPIC.search(text)
    if m is None:
        return None
    topic = (m.group(1) or m.group(2) or "").strip(" ?.!")
    topic = re.sub(r"^(?:an?|the|ein(?:e|en)?|der|die|das)\s+", "", topic, flags=_I)
    return topic or None


def _last(position: int | None, size: int) -> int | None:
    """ "The last one" (-1) as a position in a list of ``size`` (the update holds 1-based positions only)."""
    return (size or None) if position == -1 else position


def parse(text: str, state: AdvisorState) -> TurnUpdate:
    """The meaning of ``text`` in the conversation ``state`` (see the module docstring)."""
    stripped = text.strip()
    if not stripped:
        return TurnUpdate(intent=Intent.HELP)
    if is_cv(stripped):  # a CV may say "reset", "in English" or "advanced": content, not commands
        update: dict[str, object] = {"skills_have": _phrases(stripped)}
        if phrase := _goal(stripped):
            return TurnUpdate(intent=Intent.SET_GOAL, occupation=phrase, **update)  # type: ignore[arg-type]
        return TurnUpdate(intent=Intent.TELL_SKILLS, **update)  # type: ignore[arg-type]
    short = len(stripped) <= SHORT
    if short and RESET.search(stripped):
        return TurnUpdate(intent=Intent.RESET)
    switch = LANGUAGE_SWITCH.search(stripped) if short else None
    if switch and not re.search(_COURSE_WORDS, stripped, _I):
        word = next(g for g in switch.groups() if g)
        return TurnUpdate(intent=Intent.LANGUAGE, reply_language=_lang_word(word))
    shown = bool(state.current)
    pick = _last(bare_choice(stripped), len(state.candidates))
    if state.candidates and pick is not None:
        return TurnUpdate(intent=Intent.CHOOSE, choice=pick)
    if short and PROFILE.search(stripped):
        return TurnUpdate(intent=Intent.PROFILE)
    pointing = (
        re.search(r"\b(this|that|these|dies\w*|den|der|die)\b", stripped, _I) and len(stripped.split()) <= 6
    )
    named = course_ref(stripped)
    ref = _last(named, len(state.current))
    if WHY.search(stripped) and (shown or named is not None or pointing):
        # "why this one?" with no list shown: the why node says there is none
        return TurnUpdate(intent=Intent.WHY, course_ref=ref or 1)
    if pick is not None and not shown:  # "2" / "the second one" with nothing to pick from
        return TurnUpdate(intent=Intent.OTHER)
    if shown and ref is not None:
        for verdict, pattern in (("taken", TAKEN), ("dislike", DISLIKE)):
            if pattern.search(stripped):
                return TurnUpdate(intent=Intent.FEEDBACK, course_ref=ref, verdict=verdict)  # type: ignore[arg-type]
        if MORE_LIKE.search(stripped):
            return TurnUpdate(intent=Intent.MORE_LIKE, course_ref=ref)
        if LIKE.search(stripped):
            return TurnUpdate(intent=Intent.FEEDBACK, course_ref=ref, verdict="like")
        if bare_choice(stripped) is not None or len(stripped.split()) <= 4:  # "the second one": tell me more
            return TurnUpdate(intent=Intent.WHY, course_ref=ref)
    if (QUESTION.search(stripped) and "?" in stripped) or re.match(r"^\s*(what|was|welche)\b", stripped, _I):
        topic = _topic(stripped)
        if topic and not RECOMMEND.search(topic):
            return TurnUpdate(intent=Intent.QUESTION, topic=topic)

    update = {}
    if phrase := _goal(stripped):
        update["occupation"] = phrase
    if m := HAVE.search(stripped) or HAVE_AFTER.search(stripped):
        have = next(g for g in m.groups() if g)
        update["skills_have"] = _phrases(re.split(r"\b(?:but|aber)\b", have, flags=_I)[0])
    if m := SKIP.search(stripped) or SKIP_AFTER.search(stripped):
        skip = re.sub(r"-?\b(?:courses?|kurse?n?|anymore|mehr|bitte|please)\b", " ", m.group(1), flags=_I)
        update["skills_skip"] = _phrases(skip)
    rest = stripped.replace(str(update["occupation"]), " ") if "occupation" in update else stripped
    change = preferences(rest)  # the title's own words ("online community manager") are no filter
    if update.get("skills_skip") and change.free_only:  # "no paid courses" is a preference, not a skill
        update.pop("skills_skip")
    wants = bool(RECOMMEND.search(stripped))
    if "occupation" in update:
        return TurnUpdate(intent=Intent.SET_GOAL, preferences=change, wants_courses=wants, **update)  # type: ignore[arg-type]
    if update.get("skills_skip") or not change.empty():
        return TurnUpdate(intent=Intent.REFINE, preferences=change, **update)  # type: ignore[arg-type]
    if update.get("skills_have"):
        return TurnUpdate(intent=Intent.TELL_SKILLS, wants_courses=wants, **update)  # type: ignore[arg-type]
    phase = state.phase
    if phase in (Phase.SKILLS, Phase.RECOMMEND) and NONE.match(stripped):
        return TurnUpdate(intent=Intent.NO_SKILLS)
    if GREET.match(stripped):
        return TurnUpdate(intent=Intent.GREET)
    if HELP.search(stripped):
        return TurnUpdate(intent=Intent.HELP)
    if wants and state.occupation is not None:
        return TurnUpdate(intent=Intent.RECOMMEND)
    if state.candidates:
        # the user types one of the offered titles (or a new one): resolved against the candidates first
        return TurnUpdate(intent=Intent.SET_GOAL, occupation=occupation_phrase(stripped))
    if phase == Phase.GOAL:
        if wants or len(stripped.split()) > 12:
            return TurnUpdate(intent=Intent.HELP)
        return TurnUpdate(intent=Intent.SET_GOAL, occupation=occupation_phrase(stripped))
    if phase in (Phase.SKILLS, Phase.RECOMMEND) or len(stripped) > 300 or "\n" in stripped:
        return TurnUpdate(intent=Intent.TELL_SKILLS, skills_have=_phrases(stripped))
    return TurnUpdate(intent=Intent.OTHER, skills_have=_phrases(stripped) if len(stripped) < 80 else [])
