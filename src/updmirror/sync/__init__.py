"""The sync room: plan (upstream index against the store), fetch, verify, publish."""
