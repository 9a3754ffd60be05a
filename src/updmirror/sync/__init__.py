"""sync room."""
