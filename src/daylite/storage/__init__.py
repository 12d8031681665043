"""Persistence: the database engine, its tables and their migrations."""
