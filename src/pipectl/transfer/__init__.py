"""Import and export: reading CRM files as they are, writing pipectl's own formats.

parsing (encodings, CSV dialects, dates, amounts, formula neutralising), fields (the fields a
column can feed, the presets), rows (the ImportRow model at the boundary), history (turning a
row into a coherent event history), importer (the whole import), exporter (CSV and JSON).
No SQL here: store/transfer.py holds it.
"""
