"""One adapter per course catalog; each turns its file into ``Course`` records plus a ``LoadReport``."""
