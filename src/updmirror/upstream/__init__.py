"""upstream room."""
