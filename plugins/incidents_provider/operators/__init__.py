"""Operators: thin wrappers that take the window from the context and call the domain package."""
