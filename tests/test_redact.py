"""redact.py: the one place credentials are scrubbed from text."""

from updmirror import redact


def test_a_url_loses_its_user_info_and_keeps_the_rest():
    assert redact.url("https://u:s3cret@host:8443/a?b#c") == "https://host:8443/a?b#c"
    assert redact.url("http://host/x") == "http://host/x"
    assert redact.url("http://[::1") == "<unparseable URL>"


def test_the_scrubber_removes_url_user_info_and_each_secret():
    scrub = redact.Scrubber(["hunter22", None, "", "proxy-pw"])
    text = "fetch http://alice:hunter22@up/x via http://p:proxy-pw@proxy:3128 failed: hunter22, proxy-pw"
    out = scrub(text)
    assert "hunter22" not in out and "proxy-pw" not in out and "alice" not in out
    assert out == "fetch http://up/x via http://proxy:3128 failed: ***, ***"


def test_short_secrets_are_left_to_the_url_rule_when_asked():
    scrub = redact.Scrubber(["ab"], min_length=4)
    assert scrub("about http://u:ab@h/") == "about http://h/"


def test_a_secret_inside_a_longer_one_does_not_leave_the_rest():
    scrub = redact.Scrubber(["pass", "password123"])
    assert scrub("it was password123") == "it was ***"


def test_password_of_a_proxy_url():
    assert redact.password_of("http://u:pw@proxy:3128") == "pw"
    assert redact.password_of(None) is None and redact.password_of("http://proxy") is None
