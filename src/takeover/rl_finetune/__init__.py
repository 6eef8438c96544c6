"""Populated by later issues; see ../shared/DESIGN.md."""
