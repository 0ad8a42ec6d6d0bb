"""The embeddable web widget in a real headless Chromium against the real server and the real advisor.

One conversation end to end as a user would have it on /demo: open the bubble, a streamed reply, skills,
course cards, a dislike round-trip, the advisor side panel, a page reload that continues the conversation,
a network error with retry, the mobile layout and keyboard-only use; then German labels, occupation choice
buttons and an over-long message. Screenshots are kept under var/test/artifacts/ (gitignored) for review.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from craft.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test" / "artifacts"
FIRST_TURN_MS = 90_000  # the first turn of the process loads the models
TURN_MS = 30_000

pytestmark = [
    pytest.mark.data,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed at /usr/bin/chromium"),
]

# Runs in the page: records, for every streamed token, the length of the assistant bubble's text right after
# the widget rendered it, and counts completed turns (the widget's "craft-widget:event" hook).
RECORDER = """
() => {
  const host = document.querySelector('craft-widget');
  window.__craft = {lengths: [], done: 0, feedback: 0};
  host.addEventListener('craft-widget:event', (event) => {
    const rec = window.__craft;
    if (event.detail.type === 'token') {
      const bubbles = host.shadowRoot.querySelectorAll('.msg.assistant .body');
      rec.lengths.push(bubbles[bubbles.length - 1].textContent.length);
    } else if (event.detail.type === 'done') {
      rec.done += 1;
    } else if (event.detail.type === 'feedback') {
      rec.feedback += 1;
    }
  });
}
"""


GERMAN_HOST = '<!doctype html><title>Host</title><script src="/widget.js" data-lang="de"></script>'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _app(settings: Settings) -> Any:
    """The real FastAPI application over the test knowledge base (in-memory conversations)."""
    import server

    return server.create_app(settings)


@pytest.fixture(scope="module")
def base_url(agent_settings: Settings) -> Iterator[str]:
    """The real server on a free loopback port, in a background thread of this process; yields once it is
    ready (models loaded), so the browser's first turn does not wait for the warm-up."""
    import httpx
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        _app(agent_settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="widget-test-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while not (server.started and httpx.get(f"{url}/readyz").status_code == 200):
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the server did not start or never became ready")
            time.sleep(0.2)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def catalog(agent_settings: Settings) -> dict[str, str]:
    """Course id → URL of the catalog the advisor recommends from."""
    from knowledge.store import get_knowledge

    courses = get_knowledge(agent_settings).courses
    return {str(i): str(u) for i, u in zip(courses["id"], courses["url"], strict=True) if u}


def _widget_state(page: Any) -> dict[str, Any]:
    """What the widget shows, read from its shadow root."""
    return page.evaluate(
        """() => {
      const root = document.querySelector('craft-widget').shadowRoot;
      const panel = root.querySelector('.panel');
      const box = panel.getBoundingClientRect();
      return {
        open: !panel.hidden,
        messages: [...root.querySelectorAll('.msg')].map(m => [
          m.classList.contains('user') ? 'user' : 'assistant', m.querySelector('.body').textContent]),
        cards: [...root.querySelectorAll('.card')].map(c => ({
          id: c.dataset.courseId,
          href: c.querySelector('h3 a') && c.querySelector('h3 a').href,
          rel: c.querySelector('h3 a') && c.querySelector('h3 a').rel,
        })),
        panelBox: {x: box.x, y: box.y, width: box.width, height: box.height},
        focused: root.activeElement ? root.activeElement.className : null,
        font: getComputedStyle(panel).fontFamily,
        cardBorder: root.querySelector('.card') ? getComputedStyle(root.querySelector('.card')).border : '',
      };
    }"""
    )


def _wait_turns(page: Any, turns: int, timeout: float) -> None:
    page.wait_for_function(f"() => window.__craft.done >= {turns}", timeout=timeout)


def test_widget_full_conversation(base_url: str, catalog: dict[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    desktop_png = ARTIFACTS / "widget_desktop.png"
    mobile_png = ARTIFACTS / "widget_mobile.png"
    for png in (desktop_png, mobile_png):
        png.unlink(missing_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        console_errors: list[str] = []
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        try:
            page.goto(f"{base_url}/demo")
            page.evaluate(RECORDER)

            bubble = page.get_by_role("button", name="Open the course advisor")
            bubble.click()
            textbox = page.get_by_role("textbox", name="Your message")
            expect(textbox).to_be_focused()
            expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")

            # 1. the goal: the reply streams in (the bubble grows token by token before the turn ends)
            textbox.fill("I'd like to become a data analyst")
            textbox.press("Enter")
            _wait_turns(page, 1, FIRST_TURN_MS)
            lengths = page.evaluate("() => window.__craft.lengths")
            assert len(lengths) >= 2, f"expected several streamed tokens, got {lengths}"
            assert lengths == sorted(lengths) and lengths[0] < lengths[-1], lengths
            reply = _widget_state(page)["messages"][-1]
            assert reply[0] == "assistant" and len(reply[1]) == lengths[-1]
            assert "data analyst" in reply[1].lower()

            # 2. skills: course cards linked to catalog courses
            textbox.fill("I know SQL")
            textbox.press("Enter")
            _wait_turns(page, 2, TURN_MS)
            cards = _widget_state(page)["cards"]
            assert cards, "no course cards after the skills turn"
            for card in cards:
                assert card["id"] in catalog, card
                assert card["href"].rstrip("/") == catalog[card["id"]].rstrip("/"), card
                assert "noopener" in card["rel"].split()
            first = cards[0]["id"]

            # 3. dislike the first course: the verdict is posted, a fresh list comes without it
            dislike = page.locator(f'.card[data-course-id="{first}"] .dislike')
            with page.expect_response(
                lambda r: r.url.endswith("/feedback") and r.request.method == "POST"
            ) as posted:
                dislike.click()
            response = posted.value
            assert response.ok, response.status
            assert response.request.post_data_json == {"course_id": first, "verdict": "dislike"}
            _wait_turns(page, 3, TURN_MS)
            state = _widget_state(page)
            refreshed = [c["id"] for c in state["cards"]]
            assert refreshed, "no refreshed list after the dislike"
            assert first not in refreshed
            assert ["user", "show me other courses"] in state["messages"]  # the documented refresh request
            assert page.evaluate("() => window.__craft.feedback") == 1

            # 4. the advisor side panel: occupation, skills, gap, coverage
            session_id = page.evaluate("() => window.CraftWidget.sessionId()")
            profile = page.request.get(f"{base_url}/v1/sessions/{session_id}").json()
            page.get_by_role("button", name="Show my profile").click()
            side = page.get_by_role("complementary", name="Your profile")
            expect(side).to_be_visible()
            expect(side.locator(".occupation")).to_have_text(profile["target_occupation"]["label"])
            assert "analyst" in profile["target_occupation"]["label"].lower()
            expect(side.locator(".skills-have")).to_contain_text("SQL")
            gap_items = side.locator(".gap-list li")
            assert gap_items.count() == len(profile["skill_gap"]) > 0
            expect(side.locator(".gap-list .badge").first).to_have_text("essential")
            expect(side.locator(".coverage-text")).to_have_text(re.compile(r"^\d+ of \d+ essential skills$"))
            expect(side.get_by_role("progressbar")).to_have_count(1)
            # the host page's heavy-handed CSS (serif everything, dotted borders on divs) stays outside
            assert "Georgia" not in state["font"] and state["cardBorder"].startswith("1px solid"), state
            page.screenshot(path=str(desktop_png))

            # 5. a reload continues the same conversation
            before = _widget_state(page)
            page.reload()
            page.evaluate(RECORDER)
            assert page.evaluate("() => window.CraftWidget.sessionId()") == session_id
            page.get_by_role("button", name="Open the course advisor").click()
            expect(page.locator(".card").first).to_be_visible()
            after = _widget_state(page)
            assert after["messages"] == before["messages"]
            assert [c["id"] for c in after["cards"]] == refreshed
            expect(side).to_be_visible()  # the side panel stays as the user left it

            # 6. a network error: a clear message and a retry that works once the network is back
            page.route("**/messages", lambda route: route.abort())
            textbox.fill("why the second one?")
            textbox.press("Enter")
            alert = page.get_by_role("alert")
            expect(alert).to_contain_text("Connection problem")
            page.unroute("**/messages")
            page.get_by_role("button", name="Retry").click()
            _wait_turns(page, 1, TURN_MS)
            expect(page.locator(".error")).to_be_hidden()
            messages = _widget_state(page)["messages"]
            assert [m for m in messages if m == ["user", "why the second one?"]] == [
                ["user", "why the second one?"]
            ]
            assert messages[-1][0] == "assistant" and messages[-1][1]

            # 7. mobile width: the panel is the whole screen
            page.get_by_role("button", name="Hide my profile").click()
            page.set_viewport_size({"width": 375, "height": 700})
            box = _widget_state(page)["panelBox"]
            assert box == {"x": 0, "y": 0, "width": 375, "height": 700}, box
            page.screenshot(path=str(mobile_png))

            # 8. keyboard only: Tab to the bubble, Enter opens, Escape closes and focus returns
            page.set_viewport_size({"width": 1280, "height": 800})
            page.keyboard.press("Escape")
            assert not _widget_state(page)["open"]
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            for _ in range(20):
                page.keyboard.press("Tab")
                if _widget_state(page)["focused"] == "bubble":
                    break
            assert _widget_state(page)["focused"] == "bubble", "Tab never reached the chat bubble"
            page.keyboard.press("Enter")
            assert _widget_state(page)["open"]
            expect(textbox).to_be_focused()
            page.keyboard.press("Escape")
            state = _widget_state(page)
            assert not state["open"] and state["focused"] == "bubble", state

            # 9. German labels from data-lang (another page of the same site: the same conversation)
            german = context.new_page()
            german.route(
                f"{base_url}/de-host",
                lambda route: route.fulfill(content_type="text/html", body=GERMAN_HOST),
            )
            german.goto(f"{base_url}/de-host")
            german.get_by_role("button", name="Kursberater öffnen").click()
            expect(german.get_by_role("textbox", name="Ihre Nachricht")).to_be_focused()
            expect(german.locator(".card").first).to_be_visible()
            expect(german.get_by_role("button", name="Mein Profil anzeigen")).to_be_visible()

            # 10. occupation choices (a fresh visitor): a button per candidate, a click sends its number
            fresh = browser.new_context().new_page()
            fresh.goto(f"{base_url}/demo")
            fresh.evaluate(RECORDER)
            fresh.get_by_role("button", name="Open the course advisor").click()
            fresh.get_by_role("textbox", name="Your message").fill("I want to become a nurse")
            fresh.keyboard.press("Enter")
            _wait_turns(fresh, 1, TURN_MS)
            choices = fresh.get_by_role("button", name=re.compile(r"^Choose: "))
            assert choices.count() >= 2
            label = (choices.nth(2).get_attribute("aria-label") or "").removeprefix("Choose: ")
            with fresh.expect_request(lambda r: r.url.endswith("/messages")) as sent:
                choices.nth(2).click()
            assert sent.value.post_data_json == {"text": "3"}
            _wait_turns(fresh, 2, TURN_MS)
            expect(choices).to_have_count(0)
            fresh.get_by_role("button", name="Show my profile").click()
            expect(fresh.locator(".profile .occupation")).to_have_text(label)

            # 11. an over-long message: the server's own explanation, and no pointless retry button
            fresh.get_by_role("textbox", name="Your message").fill("x" * 8001)
            fresh.keyboard.press("Enter")
            expect(fresh.get_by_role("alert")).to_contain_text("at most 8,000 characters")
            expect(fresh.get_by_role("button", name="Retry")).to_be_hidden()
        finally:
            browser.close()

    assert not console_errors, console_errors
    for png in (desktop_png, mobile_png):
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
