"""eset room."""
