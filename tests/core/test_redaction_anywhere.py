"""Whatever text surrounds a key, redaction leaves no 20-character piece of it."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from guardd.core.redact import clean_secret, redact_text

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
body = st.text(alphabet=ALNUM + "_-", min_size=24, max_size=80)
glued = st.builds(lambda p, b: p + b, st.sampled_from(["sk-or-v1-", "sk-ant-api03-", "sk-proj-"]), body)
plain = st.builds(lambda b: "sk-" + b, body)
bearer = st.builds(lambda b: b, st.text(alphabet=ALNUM + "-._~+/=", min_size=24, max_size=80))
noise = st.text(alphabet=ALNUM + " _-.:=,;\"'{}[]\t/", max_size=30)
boundary = st.text(alphabet=" _:=,;\"'{}[]\t/(", min_size=1, max_size=3)


def pieces(secret: str) -> list[str]:
    return [secret[i : i + 20] for i in range(len(secret) - 19)]


def assert_hidden(secret: str, before: str, after: str) -> None:
    assume(not any(p in before or p in after for p in pieces(secret)))  # no piece of the key in the noise
    text = before + secret + after
    out = redact_text(text)
    assert not [p for p in pieces(secret) if p in out], out
    assert not [p for p in pieces(secret) if p in clean_secret(text)]


@settings(max_examples=300)
@given(glued, noise, noise)
def test_an_openrouter_anthropic_or_project_key_is_hidden_whatever_touches_it(key, before, after):
    assert_hidden(key, before, " " + after)


@settings(max_examples=200)
@given(plain, noise, boundary, noise)
def test_a_plain_sk_key_is_hidden_at_the_start_of_a_word(key, before, sep, after):
    assert_hidden(key, before + sep, " " + after)


@settings(max_examples=200)
@given(bearer, noise, st.sampled_from(["Bearer ", "bearer  ", "BEARER\t", "Authorization: Bearer "]), noise)
def test_a_bearer_token_is_hidden_whatever_its_characters(token, before, prefix, after):
    assert_hidden(token, before + " " + prefix, " " + after)


def test_a_word_ending_in_sk_dash_stays_a_word():
    assert redact_text("desk-operations-europe-west") == "desk-operations-europe-west"


def test_a_megabyte_of_url_like_text_is_redacted_in_linear_time():
    """A ledger line may hold up to a MiB in one field: redaction must not stall on it (it once tried every start
    of a run of scheme characters, each scanning to the run's end: about 2,000 s of CPU for a MiB of letters).
    The bound is a hang guard three orders of magnitude above the linear cost, not a speed measurement."""
    import time

    text = "a" * (1 << 20)
    started = time.process_time()
    assert redact_text(text) == text
    assert time.process_time() - started < 5
