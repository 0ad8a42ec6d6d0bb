"""Course catalogs normalized into one ``Course`` schema."""
