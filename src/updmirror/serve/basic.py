"""HTTP Basic authentication for the server: its realm and challenge.

The header is read by httpfacts.parse_basic; the password check, and the
memory of good checks that spares a client bcrypt on every request, live in
serve/auth.py (the htpasswd file).
"""

from __future__ import annotations

from updmirror.httpfacts import basic_challenge

#: The realm clients are asked to log in to (the exported nginx and Apache
#: configurations ask for the same one, so saved credentials keep working).
REALM = "updmirror"
CHALLENGE = f"WWW-Authenticate: {basic_challenge(REALM)}\r\n".encode()
