"""Constrained decoding of quoted titles (the RecLM-cgen idea): inside straight double quotes the local model
can only write one of the allowed titles, token by token along a prefix trie, then close the quote.

The convention is the fact sheet's own (``Course: "…"``): a title is written in ASCII double quotes. The
processor tracks each row's generated tokens: outside quotes nothing is restricted except tokens that would
open a quote *and* type characters after it in one token (``"[`` or ``".`` as an opener), so every quoted
span starts on a token boundary where the trie applies. Inside a quote only the trie's children of the title
typed so far are allowed; at a complete title also the closing tokens (one ``"``, optionally with trailing
punctuation merged in by BPE: ``".`` ``",`` ``")``). The trie holds each title as tokenized on its own,
which is how the byte-level BPE tokenizes it right after a quote (the pre-tokenizer splits punctuation from
letters); titles starting with punctuation are still written correctly, only along a path the tokenizer
would not have chosen, which does not change the decoded text. Other quote styles (“…” „…“ «…») are not
constrained: the faithfulness check catches an invented title in them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessor

QUOTE = '"'


@dataclass
class TrieNode:
    """One title prefix; ``title`` is set where a complete title ends (a longer one may continue)."""

    children: dict[int, TrieNode] = field(default_factory=dict)
    title: str | None = None


class TitleTrie:
    """The allowed titles as token-id paths (tokenized without special tokens, as after an open quote)."""

    def __init__(self, titles: Iterable[str], tokenizer: Any) -> None:
        self.root = TrieNode()
        self.titles: list[str] = []
        for raw in dict.fromkeys(t.strip() for t in titles):
            if not raw or QUOTE in raw:  # a quote inside the title would close it early
                continue
            node = self.root
            for token in tokenizer(raw, add_special_tokens=False).input_ids:
                node = node.children.setdefault(int(token), TrieNode())
            node.title = raw
            self.titles.append(raw)

    def __bool__(self) -> bool:
        return bool(self.root.children)

    def walk(self, ids: Sequence[int], node: TrieNode | None = None) -> TrieNode | None:
        """The node reached from ``node`` (default: the root) along ``ids``; ``None`` when off every path."""
        node = node or self.root
        for token in ids:
            node = node.children.get(int(token))
            if node is None:
                return None
        return node


@dataclass(frozen=True)
class QuoteTokens:
    """The tokenizer's tokens that contain a double quote, by role (computed once per tokenizer)."""

    openers: frozenset[int]  # an odd number of quotes, the last one at the end: opens a quote cleanly
    dirty_openers: frozenset[int]  # an odd number of quotes with text after the last: banned outside
    closers: frozenset[int]  # exactly one quote, at the start: closes a title (``"`` ``".`` ``",``)

    @classmethod
    def of(cls, tokenizer: Any) -> QuoteTokens:
        openers: set[int] = set()
        dirty: set[int] = set()
        closers: set[int] = set()
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        for token, token_id in tokenizer.get_vocab().items():
            # byte-level BPE keeps printable ASCII as is, so a quote in the token string is a quote in text
            if QUOTE not in token or token_id in special:
                continue
            text = tokenizer.convert_tokens_to_string([token])
            count = text.count(QUOTE)
            if count % 2 == 1:
                (openers if text.endswith(QUOTE) else dirty).add(token_id)
            if count == 1 and text.startswith(QUOTE):
                closers.add(token_id)
        return cls(frozenset(openers), frozenset(dirty), frozenset(closers))


_FREE = object()  # a row whose quotes cannot be followed (a dirty opener in the prefill): left alone


class TitleConstraint(LogitsProcessor):
    """Per row, a quoted span must be one of that row's allowed titles (see the module docstring).

    ``tries[i]`` constrains row ``i`` (``None``: row unconstrained; an empty trie: nothing may be quoted);
    ``prompt_length`` is where generation starts in ``input_ids`` (a left-padded batch shares it);
    ``prefills[i]`` is assistant text the prompt already holds (``The course "``), so a quote opened there
    continues along the trie. The state is replayed from the generated ids at every step (a few dict
    look-ups a token) rather than carried over, so nothing goes stale between steps.
    """

    def __init__(
        self,
        tries: Sequence[TitleTrie | None],
        tokenizer: Any,
        *,
        prompt_length: int,
        prefills: Sequence[str] | None = None,
        quotes: QuoteTokens | None = None,
    ) -> None:
        self.tries, self.tokenizer, self.prompt_length = list(tries), tokenizer, prompt_length
        self.quotes = quotes or QuoteTokens.of(tokenizer)
        prefills = list(prefills) if prefills is not None else [""] * len(self.tries)
        self.start = [self._initial(t, p) for t, p in zip(self.tries, prefills, strict=True)]
        self._dirty = sorted(self.quotes.dirty_openers)
        self._openers = sorted(self.quotes.openers)
        self._closers = sorted(self.quotes.closers)

    def _initial(self, trie: TitleTrie | None, prefill: str) -> object:
        """The state after the prefill: ``None`` outside quotes, a trie node inside one, ``_FREE`` if lost."""
        if trie is None:
            return _FREE
        if prefill.count(QUOTE) % 2 == 0:
            return None
        typed = prefill.rsplit(QUOTE, 1)[1]
        node = trie.walk(self.tokenizer(typed, add_special_tokens=False).input_ids if typed else [])
        return node if node is not None else _FREE

    def state(self, row: int, generated: Sequence[int]) -> object:
        """Row ``row`` after its ``generated`` tokens: ``None`` outside quotes, the trie node of the title
        typed so far inside one, ``_FREE`` when unconstrained."""
        trie, state = self.tries[row], self.start[row]
        if trie is None:
            return _FREE
        for token in generated:
            if state is _FREE:
                break
            if state is None:
                if token in self.quotes.openers:
                    state = trie.root
                elif token in self.quotes.dirty_openers:
                    state = _FREE
                continue
            assert isinstance(state, TrieNode)
            child = state.children.get(token)
            if child is not None:
                state = child
            elif state.title is not None and token in self.quotes.closers:
                state = None
            else:  # off the trie: only after max_new_tokens cut a title (the row is done) or a foreign token
                state = _FREE
        return state

    def allowed(self, state: TrieNode) -> list[int]:
        """The ids that may follow inside a quote: the trie's continuations, the closers at a full title."""
        return list(state.children) + (self._closers if state.title is not None else [])

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :].tolist()
        masked = scores.clone()
        for row, ids in enumerate(generated):
            trie, state = self.tries[row], self.state(row, ids)
            if state is _FREE or trie is None:
                continue
            if state is None:
                masked[row, self._dirty] = float("-inf")
                if not trie:
                    masked[row, self._openers] = float("-inf")
                continue
            assert isinstance(state, TrieNode)
            keep = torch.tensor(self.allowed(state), dtype=torch.long, device=scores.device)
            masked[row] = float("-inf")
            masked[row, keep] = scores[row, keep]
        return masked
