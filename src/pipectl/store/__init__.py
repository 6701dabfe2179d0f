"""The only package that speaks SQL: opening the file, schema, migrations, reads and writes."""
