"""vendor room."""
