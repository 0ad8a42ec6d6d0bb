"""Telegram rendering without the agent: HTML escaping and links, splitting under the 4,096-character limit
(checked by the same strict parser the fake Bot API uses), and the keyboards' callback data."""

from __future__ import annotations

import re

from fake_telegram import parse_html, utf16

from agent.state import AdvisorState, Covered, OccupationCandidate, OccupationRef, Preferences, ShownCourse
from channels.telegram import format as fmt
from channels.telegram import keyboards


def _visible(markup: str) -> str:
    text, errors = parse_html(markup)
    assert not errors, (errors, markup[:300])
    return text


def test_reply_to_html_links_course_lines_and_escapes_everything_else() -> None:
    reply = (
        "Great, your goal is **nurse <responsible for general care>**.\n\n"
        "1. **SQL & Databases** (Coursera · free · beginner) — https://example.org/c?id=1&lang=en\n"
        "   Teaches <b>SQL</b> & more.\n"
        "2. **Evil** — javascript:alert(1)"
    )
    html = fmt.to_html(reply)
    assert "<b>nurse &lt;responsible for general care&gt;</b>" in html
    assert '1. <a href="https://example.org/c?id=1&amp;lang=en"><b>SQL &amp; Databases</b></a>' in html
    assert "(Coursera · free · beginner)" in html
    assert "Teaches &lt;b&gt;SQL&lt;/b&gt; &amp; more." in html
    assert "javascript" not in re.findall(r'href="([^"]*)"', html)[-1]  # never linked
    assert "2. <b>Evil</b> — javascript:alert(1)" in html
    _visible(html)


def _list(n: int) -> str:
    items = []
    for i in range(1, n + 1):
        items.append(
            f'{i}. <a href="https://example.org/course?id={i}&amp;src=x"><b>Course {i} &amp; friends</b></a> '
            f"(Provider · free · beginner)\n   This course teaches skills you are missing, "
            f"like <i>data &lt;analysis&gt;</i>, step by step and with exercises. 🎓"
        )
    return "\n\n".join(items)


def test_split_keeps_items_whole_and_every_piece_valid() -> None:
    html = _list(120)
    assert utf16(html) > 3 * fmt.LIMIT
    pieces = fmt.split(html)
    assert len(pieces) >= 4
    for piece in pieces:
        assert utf16(piece) <= fmt.LIMIT
        _visible(piece)
        assert re.match(r"\d+\. <a ", piece), piece[:40]  # cut at item (paragraph) boundaries
    assert [_visible(p) for p in pieces] == [_visible(p) for p in fmt.split("\n\n".join(pieces))]
    assert " ".join(_visible(p) for p in pieces).split() == _visible(html).split()


def test_split_inside_one_long_tagged_line_closes_and_reopens_tags() -> None:
    words = " ".join(f"word{i}&amp;x" for i in range(2500))  # ~27k characters, no line break
    html = f'Intro line\n<b>bold <a href="https://example.org/?a=1&amp;b=2">{words}</a> end</b>'
    pieces = fmt.split(html, limit=4096)
    assert len(pieces) > 5
    for piece in pieces:
        assert utf16(piece) <= 4096
        _visible(piece)  # balanced, no entity or tag cut in half
    assert pieces[1].startswith('<b><a href="https://example.org/?a=1&amp;b=2">')
    assert " ".join(_visible(p) for p in pieces).split() == _visible(html).split()


def test_split_counts_utf16_and_cuts_unbroken_text() -> None:
    html = "🎓" * 5000 + "x" * 3000  # emoji count twice; no space anywhere
    pieces = fmt.split(html)
    assert all(utf16(p) <= fmt.LIMIT for p in pieces)
    assert "".join(pieces) == html
    assert fmt.split("short") == ["short"] and fmt.split("  \n ") == []


def _course(i: int, **extra: object) -> ShownCourse:
    values: dict[str, object] = {
        "course_id": f"c{i}",
        "source": "coursera",
        "url": f"https://example.org/{i}",
        "title": f"Course <{i}>",
        "provider": "Uni & Co",
        "score": 0.5,
        "turn": 3,
        **extra,
    }
    return ShownCourse.model_validate(values)


def test_course_list_and_profile_are_escaped_views_of_the_state() -> None:
    state = AdvisorState(
        language="de",
        occupation=OccupationRef(uri="u:o", label="Pflegefachkraft"),
        shown=[
            _course(1, free=True, level="beginner", explanation="Lehrt <Pflege>."),
            _course(2, price=120.0, currency="EUR", covers=[Covered(uri="u:s", label="Hygiene")]),
        ],
        current=["c2", "c1"],
        preferences=Preferences(free_only=True, levels=["beginner"]),
    )
    listing = fmt.course_list(state)
    text = _visible(listing)
    assert text.index("Course <2>") < text.index("Course <1>")  # the order shown
    assert "(Uni & Co · 120 EUR)" in text and "(Uni & Co · kostenlos · Anfänger)" in text
    assert "Lehrt <Pflege>." in text and "Vermittelt: Hygiene" in text
    profile = _visible(fmt.profile(state))
    assert "Ziel: Pflegefachkraft" in profile and "Filter: kostenlos, Anfänger" in profile
    assert "Fehlende Fähigkeiten: 0, davon 0 wesentlich" in profile
    pending = AdvisorState(candidates=[OccupationCandidate(uri="u:1", label="Nurse <a>", score=0.9)])
    assert "Still to choose: Nurse <a>" in _visible(fmt.profile(pending))


def test_keyboards_fit_telegram_and_parse_back() -> None:
    candidates = [OccupationRef(uri=f"u:{i}", label="x" * 200) for i in range(4)]
    occ = keyboards.occupation_keyboard(candidates, turn=123456789)
    fb = keyboards.feedback_keyboard(10, turn=123456789, lang="de")
    lang = keyboards.language_keyboard()
    buttons = [b for markup in (occ, fb, lang) for row in markup.inline_keyboard for b in row]
    assert all(len(str(b.callback_data).encode()) <= 64 for b in buttons)
    assert all(len(b.text) <= 64 for b in buttons)
    assert len(fb.inline_keyboard) == 10 and "gemacht" in fb.inline_keyboard[0][2].text
    assert keyboards.parse(str(occ.inline_keyboard[2][0].callback_data)) == keyboards.Press(
        "occ", turn=123456789, index=3
    )
    assert keyboards.parse("fb:7:2:d") == keyboards.Press("fb", turn=7, index=2, verdict="dislike")
    assert keyboards.parse("fb:7:2:t").verdict == "taken"  # type: ignore[union-attr]
    assert keyboards.parse("lang:de") == keyboards.Press("lang", language="de")
    for junk in (None, "", "occ:1", "fb:1:2:x", "fb:1:2:d ", "lang:fr", "occ:1:2;rm", "fb:" + "1" * 70):
        assert keyboards.parse(junk) is None
