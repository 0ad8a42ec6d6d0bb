"""The real agent over the real knowledge base (test store), with template explanations so dialogues run
in seconds; the model-written explanations have their own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conversation import Conversation

from craft.settings import Settings


@pytest.fixture
def conversation(agent_settings: Settings) -> Iterator[Conversation]:
    conv = Conversation(agent_settings)
    yield conv
    conv.close()
