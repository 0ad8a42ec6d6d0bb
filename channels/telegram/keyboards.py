"""Inline keyboards and their callback data.

Callback data is what a client sends back when a button is pressed: at most 64 bytes, and never trusted
(``parse`` accepts only the shapes below). Buttons carry the turn their message belongs to, so a press on an
older message is recognised as stale instead of acting on whatever list or candidates are current now:

- ``occ:<turn>:<n>``          pick the n-th occupation candidate (1-based)
- ``fb:<turn>:<i>:<l|d|t>``   like / dislike / taken on the i-th course of the list (index into ``current``)
- ``lang:<en|de>``            fix the reply language
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from agent.state import Lang, OccupationRef, Verdict
from channels.telegram.format import text

MAX_DATA_BYTES = 64
LABEL_CHARS = 60
VERDICTS: dict[str, Verdict] = {"l": "like", "d": "dislike", "t": "taken"}
_PATTERN = re.compile(r"occ:(\d{1,9}):(\d{1,2})|fb:(\d{1,9}):(\d{1,2}):([ldt])|lang:(en|de)")


@dataclass(frozen=True)
class Press:
    """A parsed button press."""

    kind: Literal["occ", "fb", "lang"]
    turn: int = 0
    index: int = 0
    verdict: Verdict | None = None
    language: Lang | None = None


def _label(value: str) -> str:
    return value if len(value) <= LABEL_CHARS else value[: LABEL_CHARS - 1].rstrip() + "…"


def occupation_keyboard(candidates: Sequence[OccupationRef], turn: int) -> InlineKeyboardMarkup:
    """One button per candidate occupation, in the order the reply numbers them."""
    rows = [
        [InlineKeyboardButton(_label(f"{n}. {c.label}"), callback_data=f"occ:{turn}:{n}")]
        for n, c in enumerate(candidates, 1)
    ]
    return InlineKeyboardMarkup(rows)


def feedback_keyboard(count: int, turn: int, lang: Lang) -> InlineKeyboardMarkup:
    """A row per listed course: 👍 / 👎 / ✅ taken, labelled with the course's number in the list."""
    done = text("taken_button", lang)
    rows = [
        [
            InlineKeyboardButton(f"{i} 👍", callback_data=f"fb:{turn}:{i}:l"),
            InlineKeyboardButton(f"{i} 👎", callback_data=f"fb:{turn}:{i}:d"),
            InlineKeyboardButton(f"{i} ✅ {done}", callback_data=f"fb:{turn}:{i}:t"),
        ]
        for i in range(1, count + 1)
    ]
    return InlineKeyboardMarkup(rows)


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("🇬🇧 English", callback_data="lang:en"),
                InlineKeyboardButton("🇩🇪 Deutsch", callback_data="lang:de"),
            ]
        ]
    )


def parse(data: str | None) -> Press | None:
    """The press behind callback data, or None for anything this bot did not send."""
    if not data or len(data.encode()) > MAX_DATA_BYTES:
        return None
    match = _PATTERN.fullmatch(data)
    if match is None:
        return None
    occ_turn, occ_n, fb_turn, fb_i, fb_v, lang = match.groups()
    if occ_turn is not None:
        return Press("occ", turn=int(occ_turn), index=int(occ_n))
    if fb_turn is not None:
        return Press("fb", turn=int(fb_turn), index=int(fb_i), verdict=VERDICTS[fb_v])
    return Press("lang", language="de" if lang == "de" else "en")
