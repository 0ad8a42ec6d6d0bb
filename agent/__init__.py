"""The advisor agent: a LangGraph conversation over the tools (lookup, retrieval, explanations)."""
