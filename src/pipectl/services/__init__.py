"""Use cases: one function per command's work.

Each write opens one transaction (``store.db.transaction``: BEGIN IMMEDIATE on SQLite), reads
the clock under the write lock, loads the deal and its pipeline, asks the domain rules what
happens, and records it. A script can do anything the CLI does by calling these functions
with a connection from ``pipectl.store.db.connect``; the CLI only parses and renders.
"""
