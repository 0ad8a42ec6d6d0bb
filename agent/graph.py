"""The advisor graph, assembled top-down: understand the message, route by intent, update the profile, and
— when there is enough to go on — compute the gap, recommend, explain; every path ends in ``respond``."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from agent import nodes
from agent.context import AdvisorContext
from agent.state import AdvisorState


def build(checkpointer: Any = None) -> Any:
    """The compiled graph; ``checkpointer`` (``agent.memory``) keeps conversations by thread id."""
    graph = StateGraph(AdvisorState, context_schema=AdvisorContext)
    for name in (
        "understand", "occupation", "skills", "refine", "feedback", "gap", "ask_skills", "recommend",
        "explain",
        "why", "answer", "reset", "respond",
    ):  # fmt: skip
        graph.add_node(name, getattr(nodes, name))

    # every turn starts by reading the message
    graph.add_edge(START, "understand")
    # the intent picks the handler (questions, "why", feedback, refinements, goal, skills, reset, small talk)
    graph.add_conditional_edges(
        "understand",
        nodes.route,
        ["occupation", "skills", "refine", "feedback", "gap", "why", "answer", "reset", "respond"],
    )
    # a resolved goal goes on to the skills the same message may carry; candidates or no match end the turn
    graph.add_conditional_edges("occupation", _after_occupation, ["skills", "respond"])
    # skills change the gap (kept for later when no goal is set yet)
    graph.add_conditional_edges("skills", _after_skills, ["gap", "respond"])
    # preferences and skipped topics change the list (kept for later when no goal is set yet)
    graph.add_conditional_edges("refine", _after_skills, ["gap", "respond"])
    # a dislike or "taken" replaces the list; a like is only noted
    graph.add_conditional_edges("feedback", nodes.after_feedback, ["gap", "respond"])
    # with the gap known: recommend, or first ask what the user knows
    graph.add_conditional_edges("gap", nodes.after_gap, ["recommend", "ask_skills"])
    graph.add_edge("ask_skills", "respond")
    # cards first, then their explanations
    graph.add_conditional_edges("recommend", nodes.after_recommend, ["explain", "respond"])
    graph.add_edge("explain", "respond")
    # answers that need no new list
    graph.add_edge("why", "respond")
    graph.add_edge("answer", "respond")
    graph.add_edge("reset", "respond")
    # the reply closes the turn
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer, name="craft-advisor")


def _after_occupation(state: AdvisorState) -> str:
    if state.occupation is None or state.candidates:
        return "respond"
    return "skills"


def _after_skills(state: AdvisorState) -> str:
    return "respond" if state.occupation is None or state.intent == "help" else "gap"


# `langgraph dev` / LangGraph Studio load this (langgraph.json): the platform supplies the checkpointer.
graph = build()
