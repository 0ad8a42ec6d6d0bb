"""The chat prompt of the explanation model: one place, so training and serving prompt alike.

``PROMPT_VERSION`` goes into the trained adapter's manifest; the generator refuses an adapter trained on
another prompt version instead of silently prompting it differently.
"""

from __future__ import annotations

from tools.explain.facts import FactSheet

PROMPT_VERSION = "1"
SYSTEM = (
    "In one or two short sentences, tell the learner why the course fits their goal. Use only the facts "
    "given: name no other skills, courses, prices or durations."
)

Messages = list[dict[str, str]]


def messages(sheet: FactSheet) -> Messages:
    """System + user turns for ``sheet`` (the assistant's answer is the explanation)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": sheet.render()}]
