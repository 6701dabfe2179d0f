"""Rendering: Rich tables and panels for people, JSON and CSV for programs. No SQL, no rules."""
