"""``langgraph.json`` points LangGraph Studio / ``langgraph dev`` at a compiled graph that loads without
models or data (the platform supplies the checkpointer; components load on the first turn)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from langgraph.graph.state import CompiledStateGraph

ROOT = Path(__file__).parents[2]


def test_langgraph_json_names_a_compiled_graph() -> None:
    spec = json.loads((ROOT / "langgraph.json").read_text())
    assert spec["dependencies"] == ["."]
    path, _, name = spec["graphs"]["advisor"].partition(":")
    module_spec = importlib.util.spec_from_file_location("studio_graph", ROOT / path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    graph = getattr(module, name)
    assert isinstance(graph, CompiledStateGraph)
    drawn = graph.get_graph().draw_mermaid()
    for node in ("understand", "occupation", "skills", "gap", "recommend", "explain", "respond"):
        assert node in drawn
    context = graph.get_context_jsonschema()
    assert context is not None and {"k", "explain", "understanding"} <= set(context["properties"])
