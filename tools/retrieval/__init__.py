"""Course retrieval: query building, lexical/dense/hybrid retrievers, filters and diversity."""
