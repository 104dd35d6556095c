"""Prefect flows: the case flow, its step library and the letters."""
