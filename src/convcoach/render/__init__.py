"""Rendering primitives every page shares: an escaped, self-contained HTML page and Agg figures."""
