"""Sources turned into one versioned knowledge snapshot: ESCO, Bundesagentur tables, course catalogs."""
