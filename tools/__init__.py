"""What the agent calls: occupation and skill lookup (and, later, retrieval, ranking, explanation)."""
