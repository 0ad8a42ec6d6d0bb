"""Routes by resource: sessions (conversations), stateless recommendations, occupations, health, admin."""
