"""Results files: the schema (every variable once), atomic output, the writer, the reader, shards and
merge. Imports the model and the core's pure layout."""
