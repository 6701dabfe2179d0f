"""Import and export: reading CRM files as they are, writing pipectl's own formats.

parsing (encodings, CSV dialects, dates, amounts, formula neutralising), fields (the fields a
column can feed, the presets), stage_map (a file's stage names as stages of the target
pipeline; a pipeline made from them), target (which pipeline an import writes into), rows (the
ImportRow model at the boundary), history (turning a row into a coherent event history),
bulk (a large CSV converted in SQL), common (what every road shares), importer (CSV and JSON
rows), json_rows (a JSON array read as rows), native (pipectl's own export: json_form,
csv_pair, check, load), formats (that export's versions and columns), exporter (CSV and JSON).
No SQL here: store/transfer.py and store/bulk.py hold it.
"""
