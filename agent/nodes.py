"""The graph's nodes: small async functions from the state (and the run's context) to a state update.

Blocking work (lookups, retrieval, generation) runs in a worker thread so one server process keeps serving
other conversations. Text for the user is streamed as it is decided (``token`` events on the custom stream)
and accumulated in ``reply``; course cards and explanations go out as their own events first, so a channel
can show them before the text is complete.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

from agent import replies as R
from agent.context import AdvisorContext
from agent.llm_understand import llm_parse
from agent.state import (
    AdvisorState,
    Coverage,
    Covered,
    GapItem,
    KnownSkill,
    Lang,
    OccupationCandidate,
    OccupationRef,
    PathStep,
    Preferences,
    ShownCourse,
    SkippedSkill,
    Verdict,
    next_phase,
)
from agent.understand import detect_language, parse
from agent.updates import Intent, PreferenceChange, TurnUpdate

log = logging.getLogger(__name__)

ACCEPT_SCORE = 0.9  # a lookup this sure (and clearly ahead) is taken without asking
MIN_SCORE = 0.6  # below this nothing matches
CLOSE = 0.12  # candidates within this of the best are offered
MAX_CANDIDATES = 4
SKILL_SCORE = 0.7
SKILL_SCORE_UNPROMPTED = 0.85  # a bare phrase after the list was shown must match well to count as a skill
QUESTION_SCORE = 0.75  # "what does a nurse need?": the closest occupation answers, if it is this close
FIND_CHUNK = 3500  # the skill finder's input limit is 4,000 characters; long CVs go in pieces

Ctx = Runtime[AdvisorContext]


# --- helpers -------------------------------------------------------------------------------------


class _Reply:
    """Accumulates one node's reply text on top of the state's, streaming each piece."""

    def __init__(self, state: AdvisorState, runtime: Ctx) -> None:
        self.state, self.runtime, self.text = state, runtime, state.reply

    def add(self, text: str, *, paragraph: bool = True) -> None:
        if not text:
            return
        sep = ("\n\n" if paragraph else " ") if self.text else ""
        piece = sep + text
        self.runtime.stream_writer({"event": "token", "text": piece})
        self.text += piece


def _last_user_text(state: AdvisorState) -> str:
    for message in reversed(state.messages):
        if isinstance(message, HumanMessage):
            content = message.content
            return content if isinstance(content, str) else " ".join(str(c) for c in content)
    return ""


def _update(state: AdvisorState) -> TurnUpdate:
    return TurnUpdate.model_validate(state.update or {"intent": Intent.OTHER})


def _chunks(text: str, size: int = FIND_CHUNK) -> list[str]:
    """Pieces of at most ``size`` characters, cut at line or sentence ends where possible."""
    out: list[str] = []
    while len(text) > size:
        cut = max(text.rfind("\n", 0, size), text.rfind(". ", 0, size))
        cut = cut + 1 if cut > size // 2 else size
        out.append(text[:cut])
        text = text[cut:]
    return [*out, text] if text.strip() else out


def _find_skills(phrases: Sequence[str], lang: Lang, min_score: float) -> tuple[list[KnownSkill], list[str]]:
    """ESCO skills in the user's phrases, and the phrases nothing matched."""
    from tools.lookup import InvalidQuery, find_skills

    found: dict[str, KnownSkill] = {}
    missed: list[str] = []
    for phrase in phrases:
        hits = []
        lines = [line for line in phrase.splitlines() if line.strip()] or [phrase]
        for piece in (chunk for line in lines for chunk in _chunks(line)):  # a list or CV: line by line
            try:
                hits += find_skills(piece, lang, k=3, min_score=min_score)
            except InvalidQuery:
                continue
        if not hits:
            missed.append(phrase)
        best: dict[str, Any] = {}
        for hit in hits:  # the best skill of each segment the finder read (one per list item / CV line)
            if hit.span not in best or hit.score > best[hit.span].score:
                best[hit.span] = hit
        for hit in best.values():
            if hit.uri not in found or found[hit.uri].confidence < hit.score:
                found[hit.uri] = KnownSkill(
                    uri=hit.uri, label=hit.label, wording=hit.span[:200], confidence=round(hit.score, 3)
                )
    return list(found.values()), missed


def _tags(prefs: Preferences, lang: Lang) -> str:
    words = R.PREFERENCE_WORDS
    tags = []
    if prefs.free_only:
        tags.append(words["free"][lang])
    if prefs.price_max is not None:
        tags.append(words["price"][lang].format(v=f"{prefs.price_max:g}"))
    if prefs.languages:
        names = [R.LANGUAGE_NAMES[lang][code] for code in prefs.languages]
        tags.append(words["language"][lang].format(v="/".join(names)))
    if prefs.levels:
        tags.append(
            words["level"][lang].format(v="/".join(R.LEVEL_NAMES[lang].get(v, v) for v in prefs.levels))
        )
    if prefs.formats:
        tags.append(words["format"][lang].format(v="/".join(prefs.formats)))
    if prefs.location:
        tags.append(words["location"][lang].format(v=prefs.location))
    if prefs.hours_per_week:
        tags.append(words["hours"][lang].format(v=f"{prefs.hours_per_week:g}"))
    return ", ".join(tags) or R.TEXTS["nothing"][lang]


def _course_line(i: int, course: ShownCourse, lang: Lang) -> str:
    facts = [course.provider] if course.provider else []
    if course.free:
        facts.append(R.FREE_WORD[lang])
    elif course.price is not None:
        facts.append(f"{course.price:g} {course.currency or ''}".strip())
    if course.level and course.level != "unknown":
        facts.append(R.LEVEL_NAMES[lang].get(course.level, course.level))
    head = f"{i}. **{course.title}**" + (f" ({' · '.join(facts)})" if facts else "")
    if course.url:
        head += f" — {course.url}"
    return head


# --- nodes ---------------------------------------------------------------------------------------


async def understand(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Read the latest message: language, then a validated ``TurnUpdate`` (LLM path when configured)."""
    text = _last_user_text(state)
    language = state.language if state.language_pinned else detect_language(text[:2000], state.language)
    limit = runtime.context.services.settings.max_message_chars
    update: TurnUpdate | None = None
    notices: list[str] = []
    if len(text) > limit:
        notices.append(R.say("too_long", language, n=len(text), max=limit))
        update = TurnUpdate(intent=Intent.OTHER)
    elif runtime.context.understanding == "llm" and runtime.context.services.chat_model is not None:
        update = await llm_parse(runtime.context.services.chat_model, text, state)
    if update is None:
        update = parse(text, state)
    if update.intent == Intent.LANGUAGE and update.reply_language:
        language = update.reply_language
    result: dict[str, Any] = {
        "language": language,
        "language_pinned": state.language_pinned or update.intent == Intent.LANGUAGE,
        "update": update.model_dump(mode="json"),
        "intent": update.intent.value,
        "turn": state.turn + 1,
        "reply": "",
        "notices": notices,
    }
    if (
        language != state.language and state.occupation is not None
    ):  # replies name the goal in the new language
        concept = runtime.context.services.kb.occupations.get(state.occupation.uri)
        if concept is not None:
            result["occupation"] = state.occupation.model_copy(update={"label": concept.label(language)})
    return result


def route(state: AdvisorState) -> str:
    """The node that handles this turn's intent."""
    intent = Intent(state.intent or Intent.OTHER)
    if state.notices and intent == Intent.OTHER:  # refused (too long): just say so
        return "respond"
    table = {
        Intent.RESET: "reset",
        Intent.LANGUAGE: "respond",
        Intent.SET_GOAL: "occupation",
        Intent.CHOOSE: "occupation",
        Intent.TELL_SKILLS: "skills",
        Intent.NO_SKILLS: "skills",
        Intent.REFINE: "refine",
        Intent.FEEDBACK: "feedback",
        Intent.MORE_LIKE: "feedback",
        Intent.WHY: "why",
        Intent.QUESTION: "answer",
        Intent.PROFILE: "respond",
        Intent.RECOMMEND: "gap",
    }
    node = table.get(intent, "respond")
    if node == "refine" and state.occupation is None:  # filters before a goal are kept for later
        return "refine"
    if node in ("gap", "refine", "feedback", "why", "skills") and state.occupation is None:
        # nothing to compute a gap for yet: skills are kept, the rest waits for a goal
        return "skills" if intent == Intent.TELL_SKILLS else "respond"
    if intent == Intent.OTHER and state.occupation is not None and _update(state).skills_have:
        return "skills"
    return node


async def reset(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Forget everything but the language: a fresh conversation on the same id."""
    fresh = AdvisorState(language=state.language, language_pinned=state.language_pinned, turn=state.turn)
    reply = _Reply(AdvisorState(), runtime)
    reply.add(R.say("reset", state.language))
    human = state.messages[-1] if state.messages else None
    values = {name: getattr(fresh, name) for name in fresh.__dataclass_fields__ if name != "messages"}
    messages: list[Any] = [RemoveMessage(id=REMOVE_ALL_MESSAGES)]
    if human is not None:
        messages.append(human)
    return {**values, "messages": messages, "reply": reply.text, "intent": Intent.RESET.value}


async def occupation(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Resolve the user's words (or their pick) to one ESCO occupation, or offer close candidates; filters
    said in the same message ("Bäcker, nur kostenlose Kurse") are kept whatever the lookup gives."""
    result = await _occupation(state, runtime)
    change = _update(state).preferences
    if not change.empty():
        result["preferences"] = _apply_preferences(state, change)
    return result


async def _occupation(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    from tools.lookup import find_occupations, get_occupation

    update, lang = _update(state), state.language
    reply = _Reply(state, runtime)
    chosen: OccupationCandidate | None = None
    candidates: list[OccupationCandidate] = []
    if update.intent == Intent.CHOOSE and state.candidates:
        pick = update.choice or 0
        pick = len(state.candidates) if pick == -1 else pick
        if not 1 <= pick <= len(state.candidates):
            reply.add(R.say("bad_choice", lang, n=len(state.candidates)))
            return {"reply": reply.text}
        chosen = state.candidates[pick - 1]
    else:
        words = (update.occupation or "").strip()
        if not words:
            reply.add(R.say("ask_goal", lang))
            return {"reply": reply.text}
        found = await asyncio.to_thread(find_occupations, words, lang, 8)
        offered = {c.uri: c for c in state.candidates}
        in_offer = [c for c in found if c.uri in offered and c.score >= ACCEPT_SCORE]
        found = [c for c in found if c.score >= MIN_SCORE]
        if in_offer:
            chosen = OccupationCandidate(
                uri=in_offer[0].uri, label=in_offer[0].label, score=in_offer[0].score
            )
        elif not found:
            reply.add(R.say("unknown_occupation", lang, text=R.quote(words)))
            return {"reply": reply.text, "candidates": []}
        else:
            chosen, candidates = _decide(found, words)
        if chosen is None:
            reply.add(R.say("choose", lang, text=R.quote(words)))
            reply.add("\n".join(f"{i}. {c.label}" for i, c in enumerate(candidates, 1)), paragraph=False)
            runtime.stream_writer({"event": "candidates", "items": [c.model_dump() for c in candidates]})
            return {"reply": reply.text, "candidates": candidates}
    assert chosen is not None
    detail = await asyncio.to_thread(get_occupation, chosen.uri, lang)
    assert detail is not None
    optional = R.say("goal_optional", lang, n=len(detail.optional_skills)) if detail.optional_skills else ""
    changed = state.occupation is None or state.occupation.uri != chosen.uri
    reply.add(
        R.say("goal_set", lang, label=detail.label, essential=len(detail.essential_skills), optional=optional)
    )
    result: dict[str, Any] = {
        "reply": reply.text,
        "occupation": OccupationRef(uri=chosen.uri, label=detail.label),
        "candidates": [],
    }
    if changed:
        result["current"] = []
        result["coverage"] = None
        result["path"] = []
    return result


def _forms(label: str) -> set[str]:
    """A preferred label and its gender forms ("Koch/Köchin" is also "Koch")."""
    folded = label.casefold()
    return {folded, *(part.strip() for part in folded.split("/"))}


def _decide(found: list[Any], words: str) -> tuple[OccupationCandidate | None, list[OccupationCandidate]]:
    """One clear winner (an exact preferred label, or a sure match well ahead), else the close ones."""
    as_candidates = [OccupationCandidate(uri=c.uri, label=c.label, score=min(1.0, c.score)) for c in found]
    norm = words.casefold()
    exact_pref = [
        cand
        for c, cand in zip(found, as_candidates, strict=True)
        if c.match == "exact" and c.matched_label.casefold() == norm and norm in _forms(c.label)
    ]
    if len(exact_pref) == 1:
        return exact_pref[0], []
    best = as_candidates[0]
    if found[0].match == "exact" and norm not in _forms(found[0].label):
        # the words are only an alias of the best ("teacher" of politics lecturer); when other titles are the
        # words with a qualifier ("PE teacher", "prison teacher") they name a family of jobs: the user picks
        word = re.compile(rf"(?<!\w){re.escape(norm)}(?!\w)")
        family = [
            cand
            for c, cand in zip(found[1:], as_candidates[1:], strict=True)
            if word.search(c.matched_label.casefold())
        ]
        if len(family) >= 2:
            return None, [best, *family][:MAX_CANDIDATES]
    runner_up = as_candidates[1].score if len(as_candidates) > 1 else 0.0
    if best.score >= ACCEPT_SCORE and best.score - runner_up > CLOSE:
        return best, []
    close = [c for c in as_candidates if c.score >= best.score - 2 * CLOSE][:MAX_CANDIDATES]
    if len(close) == 1 and best.score >= ACCEPT_SCORE:
        return best, []
    return None, close


async def skills(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Capture the skills the user has (phrases, lists, a pasted CV) and confirm what was understood."""
    update, lang = _update(state), state.language
    reply = _Reply(state, runtime)
    result: dict[str, Any] = {}
    if update.intent == Intent.NO_SKILLS:
        result["skills_done"] = True
    phrases = update.skills_have
    if phrases:
        unprompted = update.intent == Intent.OTHER
        found, missed = await asyncio.to_thread(
            _find_skills, phrases, lang, SKILL_SCORE_UNPROMPTED if unprompted else SKILL_SCORE
        )
        if unprompted and not found:
            reply.add(R.say("not_understood", lang))
            return {"reply": reply.text, "intent": Intent.HELP.value}
        known = {s.uri: s for s in state.skills_have}
        for skill in found:
            known[skill.uri] = skill
        result["skills_have"] = list(known.values())
        result["skills_done"] = True
        if found:
            reply.add(
                R.say("skills_understood", lang, skills=R.join([s.label for s in found], lang, limit=8))
            )
            if state.occupation is not None:
                needed = {uri for uri, _ in state_occupation_skills(runtime, state.occupation.uri)}
                relevant = sum(s.uri in needed for s in found)
                if relevant:
                    reply.add(
                        R.say("skills_relevant", lang, n=relevant, label=state.occupation.label),
                        paragraph=False,
                    )
        for text in missed[:3]:
            if len(text) <= 80:
                reply.add(R.say("skills_none_found", lang, text=R.quote(text)), paragraph=False)
    result["reply"] = reply.text
    return result


def state_occupation_skills(runtime: Ctx, uri: str) -> list[tuple[str, str]]:
    return list(runtime.context.services.kb.occupation_skills.get(uri, []))


async def refine(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Apply preference changes and skipped topics; the list is then recomputed."""
    update, lang = _update(state), state.language
    reply = _Reply(state, runtime)
    prefs = _apply_preferences(state, update.preferences)
    result: dict[str, Any] = {"preferences": prefs}
    if update.preferences.cheaper and prefs.price_max is None and not prefs.free_only:
        prefs = prefs.model_copy(update={"free_only": True})
        result["preferences"] = prefs
        reply.add(R.say("prefs_cleared_cheaper", lang))
    if update.skills_skip:
        found, _ = await asyncio.to_thread(_find_skills, update.skills_skip, lang, SKILL_SCORE)
        skipped = {s.uri: s for s in state.skills_skip}
        for skill in found:
            skipped[skill.uri] = SkippedSkill(uri=skill.uri, label=skill.label, wording=skill.wording)
        words = [SkippedSkill(uri="", label=R.quote(w), wording=w) for w in update.skills_skip]
        # the words themselves also exclude courses named after them ("Excel")
        for word in (w for w in words if len(w.wording) <= 60):
            skipped.setdefault(f"text:{word.wording.casefold()}", word)
        result["skills_skip"] = list(skipped.values())
        said = R.join([R.quote(w) for w in update.skills_skip], lang)
        reply.add(R.say("skip_understood", lang, skills=said))
    if not update.preferences.empty():
        reply.add(R.say("prefs_understood", lang, tags=_tags(prefs, lang)), paragraph=not update.skills_skip)
    result["reply"] = reply.text
    return result


def _apply_preferences(state: AdvisorState, change: PreferenceChange) -> Preferences:
    prefs = state.preferences.model_copy()
    values = prefs.model_dump()
    if change.free_only is not None:
        values["free_only"] = change.free_only
    if change.price_max is not None:
        values["price_max"] = change.price_max
    elif change.cheaper:
        prices = sorted(
            c.price
            for c in state.shown
            if c.course_id in state.current and c.price is not None and not c.free
        )
        if prices:
            values["price_max"] = max(0.0, prices[len(prices) // 2] - 0.01)
    if change.languages is not None:
        values["languages"] = change.languages
    if change.level is not None:
        values["levels"] = [change.level]
    if change.formats is not None:
        values["formats"] = change.formats
    if change.location is not None:
        values["location"] = change.location
    if change.hours_per_week is not None:
        values["hours_per_week"] = change.hours_per_week
    return Preferences.model_validate(values)


async def feedback(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Like / dislike / taken on a shown course; "more like the second one" re-searches around it."""
    update, lang = _update(state), state.language
    reply = _Reply(state, runtime)
    course = _referenced(state, update.course_ref)
    if course is None:
        reply.add(R.say("bad_ref", lang, n=len(state.current)) if state.current else R.say("no_list", lang))
        return {"reply": reply.text, "intent": Intent.OTHER.value}
    if update.intent == Intent.MORE_LIKE:
        reply.add(R.say("more_like", lang, title=course.title))
        return {"reply": reply.text}
    verdict = update.verdict or "like"
    result = apply_feedback(state, course, verdict)
    reply.add(
        R.say({"like": "liked", "dislike": "disliked", "taken": "taken"}[verdict], lang, title=course.title)
    )
    if verdict == "like":
        result["intent"] = Intent.OTHER.value  # nothing to recompute
    result["reply"] = reply.text
    return result


def apply_feedback(state: AdvisorState, course: ShownCourse, verdict: Verdict) -> dict[str, Any]:
    """The state update of a verdict on a shown course (from a message or a feedback button): the verdict is
    kept (a disliked or taken course is never shown again) and a taken course's skills become the user's."""
    shown = [
        c.model_copy(update={"feedback": verdict}) if c.course_id == course.course_id else c
        for c in state.shown
    ]
    result: dict[str, Any] = {"shown": shown}
    if verdict == "taken":
        known = {s.uri: s for s in state.skills_have}
        for skill in course.covers:
            known.setdefault(
                skill.uri,
                KnownSkill(uri=skill.uri, label=skill.label, wording=course.title[:200], confidence=1.0),
            )
        result["skills_have"] = list(known.values())
    return result


def after_feedback(state: AdvisorState) -> str:
    return "respond" if state.intent == Intent.OTHER.value else "gap"


def _referenced(state: AdvisorState, ref: int | None) -> ShownCourse | None:
    if not state.current:
        return None
    index = len(state.current) if ref == -1 else (ref or 1)
    if not 1 <= index <= len(state.current):
        return None
    by_id = {c.course_id: c for c in state.shown}
    return by_id.get(state.current[index - 1])


async def gap(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """The occupation's skills minus those the user has or skips, essential first."""
    from tools.retrieval.query import skill_gap

    assert state.occupation is not None
    kb = runtime.context.services.kb
    drop = {s.uri for s in state.skills_have} | {s.uri for s in state.skills_skip if s.uri}
    items = skill_gap(kb, state.occupation.uri, drop, state.language)
    return {"gap": [GapItem(uri=g.uri, label=g.label, essential=g.essential) for g in items]}


def after_gap(state: AdvisorState) -> str:
    """Recommend once the user's skills were asked for (or given, or declined), or when asked to."""
    update = _update(state)
    if state.skills_done or update.wants_courses or update.intent in (Intent.RECOMMEND, Intent.REFINE):
        return "recommend"
    return "ask_skills"


async def ask_skills(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    reply = _Reply(state, runtime)
    reply.add(R.say("ask_skills", state.language))
    return {"reply": reply.text}


async def recommend(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Retrieve and rank courses for the gap under the user's filters; cards go out first."""
    from tools.plan import coverage, learning_path
    from tools.retrieval.query import build_query

    assert state.occupation is not None
    services, lang, k = runtime.context.services, state.language, runtime.context.k
    update = _update(state)
    reply = _Reply(state, runtime)
    drop = {s.uri for s in state.skills_have} | {s.uri for s in state.skills_skip if s.uri}
    query = build_query(
        services.kb, state.occupation.uri, drop, lang=lang, filters=state.preferences.filters()
    )
    if update.intent == Intent.MORE_LIKE and (anchor := _referenced(state, update.course_ref)):
        extra = ". ".join([anchor.title, anchor.title, *(s.label for s in anchor.covers)])
        query = query.model_copy(update={"text": f"{extra}. {query.text}"})
    rejected = {c.course_id for c in state.shown if c.feedback in ("dislike", "taken")}
    if update.intent == Intent.MORE_LIKE:
        rejected |= set(state.current)
    terms = [s.wording for s in state.skills_skip if not s.uri]
    essential_missing = [g for g in query.gap if g.essential]
    if update.intent != Intent.MORE_LIKE:  # said before the search: the first token does not wait for it
        if essential_missing:
            examples = R.join([g.label for g in essential_missing[:3]], lang)
            reply.add(R.say("gap", lang, essential=len(essential_missing), examples=examples))
        else:
            reply.add(R.say("no_gap", lang, label=state.occupation.label))
    found = await asyncio.to_thread(
        services.finder.find,
        query,
        k,
        exclude_ids=rejected,
        exclude_terms=terms,
        per_language=state.preferences.languages is None,  # languages not chosen by the user
    )
    if found and update.intent != Intent.MORE_LIKE:
        reply.add(R.say("intro", lang, n=len(found), label=state.occupation.label))
    turn_courses = [
        ShownCourse(
            **c.model_dump(exclude={"covers"}),
            covers=[Covered(uri=s.uri, label=s.label) for s in c.covers],
            turn=state.turn,
        )
        for c in found
    ]
    runtime.stream_writer({"event": "recommendations", "items": [c.model_dump() for c in turn_courses]})
    notices = list(state.notices)
    if len(found) < k:
        tags = _tags(state.preferences, lang)
        notices.append(R.say("few" if found else "none", lang, n=len(found), tags=tags))
        if state.preferences.languages and "de" in state.preferences.languages:
            notices.append(R.say("live_hint", lang))
    cover = coverage(found, query.gap)
    steps = learning_path(found, query.gap)
    history = {c.course_id: c for c in state.shown}
    for course in turn_courses:
        history[course.course_id] = course.model_copy(
            update={"feedback": history.get(course.course_id, course).feedback}
        )
    return {
        "reply": reply.text,
        "current": [c.course_id for c in turn_courses],
        "shown": list(history.values()),
        "coverage": Coverage(
            essential_total=cover.essential_total,
            essential_covered=cover.essential_covered,
            total=cover.total,
            covered=cover.covered,
            missing_essential=[Covered(uri=s.uri, label=s.label) for s in cover.missing_essential],
        ),
        "path": [
            PathStep(
                course_id=s.course_id,
                title=s.title,
                level=s.level,
                adds=[Covered(**a.model_dump()) for a in s.adds],
            )
            for s in steps
        ],
        "notices": notices,
        "skills_done": True,
    }


def after_recommend(state: AdvisorState) -> str:
    return "explain" if state.current else "respond"


async def explain(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """One line per course, each with a short grounded explanation, streamed as each batch is ready."""
    from tools.explain.facts import SheetError, build_fact_sheet
    from tools.retrieval.base import GapSkill

    assert state.occupation is not None
    services, lang = runtime.context.services, state.language
    reply = _Reply(state, runtime)
    by_id = {c.course_id: c for c in state.shown}
    courses = [by_id[cid] for cid in state.current]
    texts: dict[str, tuple[str, str]] = {}
    if runtime.context.explain:
        from tools.recommend import cached_course_skills

        table = cached_course_skills(services.settings)  # the table the finder's covers came from
        gap_skills = [GapSkill(uri=g.uri, label=g.label, essential=g.essential) for g in state.gap]
        sheets = []
        for course in courses:
            try:
                sheets.append(
                    build_fact_sheet(
                        services.kb, state.occupation.uri, course.course_id, table, gap=gap_skills, lang=lang
                    )
                )
            except SheetError as error:
                log.warning("no fact sheet for %s: %s", course.course_id, error)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def work() -> None:
            try:
                for explanation in services.generator.stream(sheets, batch_size=max(1, len(sheets))):
                    loop.call_soon_threadsafe(queue.put_nowait, explanation)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = asyncio.create_task(asyncio.to_thread(work))
        while (item := await queue.get()) is not None:
            texts[item.course_id] = (item.text, item.source)
            runtime.stream_writer(
                {
                    "event": "explanation",
                    "course_id": item.course_id,
                    "text": item.text,
                    "source": item.source,
                }
            )
        await worker
    lines = []
    for i, course in enumerate(courses, 1):
        line = _course_line(i, course, lang)
        if course.course_id in texts:
            line += "\n   " + texts[course.course_id][0]
        lines.append(line)
    reply.add("\n".join(lines))
    shown = [
        c.model_copy(
            update={"explanation": texts[c.course_id][0], "explanation_source": texts[c.course_id][1]}
        )
        if c.course_id in texts
        else c
        for c in state.shown
    ]
    if state.coverage is not None and state.coverage.essential_total:
        cover = state.coverage
        reply.add(R.say("coverage", lang, covered=cover.essential_covered, total=cover.essential_total))
        if cover.missing_essential:
            missing = R.join([s.label for s in cover.missing_essential], lang, limit=4)
            reply.add(R.say("coverage_missing", lang, skills=missing), paragraph=False)
    if len(state.path) > 1:
        position = {cid: i for i, cid in enumerate(state.current, 1)}
        steps = " → ".join(f"{position[s.course_id]}. {s.title}" for s in state.path)
        reply.add(R.say("path", lang, steps=steps))
    reply.add(R.say("refine_hint", lang))
    return {"reply": reply.text, "shown": shown}


async def why(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Why a shown course: the gap skills it teaches (facts) and its explanation."""
    update, lang = _update(state), state.language
    reply = _Reply(state, runtime)
    course = _referenced(state, update.course_ref)
    if course is None:
        reply.add(R.say("bad_ref", lang, n=len(state.current)) if state.current else R.say("no_list", lang))
        return {"reply": reply.text}
    reply.add(R.say("why_head", lang, title=course.title))
    skills = f": {R.join([s.label for s in course.covers], lang)}" if course.covers else ""
    key = "why_facts" if course.covers else "why_no_facts"  # never "it teaches 0 of your missing skills"
    reply.add(R.say(key, lang, n=len(course.covers), skills=skills), paragraph=False)
    if course.explanation:
        reply.add(course.explanation, paragraph=False)
    return {"reply": reply.text}


async def answer(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Questions about an occupation ("what does a data analyst need?") or a skill, from ESCO."""
    from tools.lookup import find_occupations, find_skills, get_occupation

    update, lang = _update(state), state.language
    reply = _Reply(state, runtime)
    topic = (update.topic or "").strip()
    occupations = await asyncio.to_thread(find_occupations, topic, lang, 1) if topic else []
    if occupations and occupations[0].score >= QUESTION_SCORE:
        detail = await asyncio.to_thread(get_occupation, occupations[0].uri, lang)
        assert detail is not None
        labels = [s.label for s in detail.essential_skills]
        reply.add(R.say("answer_occupation", lang, label=detail.label, skills=R.join(labels, lang, limit=10)))
        if detail.description:
            reply.add(detail.description[:400], paragraph=False)
        return {"reply": reply.text}
    found = await asyncio.to_thread(find_skills, topic, lang, 1, ACCEPT_SCORE) if topic else []
    if found:
        concept = runtime.context.services.kb.skills[found[0].uri]
        kind = {"en": concept.skill_type or "skill", "de": "Kompetenz"}[lang]
        description = concept.description(lang) or ""
        reply.add(R.say("answer_skill", lang, label=found[0].label, kind=kind, description=description[:400]))
        return {"reply": reply.text}
    reply.add(R.say("answer_unknown", lang, text=R.quote(topic) or "?"))
    return {"reply": reply.text}


async def respond(state: AdvisorState, runtime: Ctx) -> dict[str, Any]:
    """Close the turn: intent-specific text not said yet, notices, the guiding question, the message."""
    lang = state.language
    intent = Intent(state.intent or Intent.OTHER)
    reply = _Reply(state, runtime)
    if intent == Intent.LANGUAGE:
        reply.add(R.say("language", lang))
    elif intent == Intent.PROFILE:
        goal = state.occupation.label if state.occupation else R.TEXTS["not_set"][lang]
        have = R.join([s.label for s in state.skills_have], lang, limit=10)
        skip = R.join(
            [s.label for s in state.skills_skip if s.uri] or [s.wording for s in state.skills_skip], lang
        )
        reply.add(
            R.say("profile", lang, goal=goal, have=have, skip=skip, tags=_tags(state.preferences, lang))
        )
    elif intent in (Intent.GREET, Intent.HELP, Intent.OTHER) and not state.notices:
        if intent == Intent.GREET and state.occupation is not None:
            reply.add(R.say("welcome_back", lang, label=state.occupation.label))
            if state.current:
                reply.add(R.say("refine_hint", lang))
        elif intent == Intent.GREET:
            reply.add(R.say("welcome", lang))
        elif intent == Intent.HELP:
            reply.add(R.say("help", lang))
        elif not reply.text:
            reply.add(R.say("not_understood", lang))
    for notice in state.notices:
        reply.add(notice)
    guiding = (Intent.GREET, Intent.HELP, Intent.OTHER, Intent.LANGUAGE, Intent.PROFILE, Intent.REFINE)
    if intent in guiding or not reply.text:
        if state.occupation is None and not state.candidates and intent != Intent.GREET:
            reply.add(R.say("ask_goal", lang))
        elif state.occupation is not None and not state.skills_done:
            reply.add(R.say("ask_skills", lang))
    return {"reply": reply.text, "messages": [AIMessage(content=reply.text)], "phase": next_phase(state)}
