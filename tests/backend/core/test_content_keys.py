"""Content keys and sealed text: wrapping, opening, and what a wrong key or a change does."""

import base64

import pytest

from backend.core import content_keys, sealing
from backend.core.content_keys import WrongKey
from backend.core.sealing import ContentLocked, Sealing


def test_sealed_text_opens_only_with_its_key_and_is_recognizable() -> None:
    key, other = content_keys.new_content_key(), content_keys.new_content_key()
    sealed = content_keys.seal_text(key, "héllo, wörld")
    assert content_keys.is_sealed(sealed) and "héllo" not in sealed
    assert content_keys.sealed_key_id(sealed) == content_keys.key_id(key)
    assert content_keys.open_text(key, sealed) == "héllo, wörld"
    assert content_keys.seal_text(key, "same") != content_keys.seal_text(key, "same")  # nonces
    with pytest.raises(WrongKey):
        content_keys.open_text(other, sealed)


def test_an_altered_sealed_value_fails_to_open() -> None:
    key = content_keys.new_content_key()
    prefix, body = content_keys.seal_text(key, "the original").rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1
    altered = f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    with pytest.raises(WrongKey):
        content_keys.open_text(key, altered)


def test_password_recovery_and_session_wraps() -> None:
    key, salt = content_keys.new_content_key(), content_keys.new_salt()
    wrapped = content_keys.wrap_with_password_key(content_keys.password_key("pw one", salt), key)
    opened = content_keys.unwrap_with_password_key(
        content_keys.password_key("pw one", salt), wrapped
    )
    assert opened == key
    with pytest.raises(WrongKey):
        content_keys.unwrap_with_password_key(content_keys.password_key("pw two", salt), wrapped)
    recovery = content_keys.new_recovery_key()
    by_recovery = content_keys.wrap_with_recovery_key(recovery, key)
    typed = recovery.lower().replace("-", " ")
    assert content_keys.unwrap_with_recovery_key(typed, by_recovery) == key
    token = "a-session-token"
    by_session = content_keys.wrap_for_session(token, key)
    assert content_keys.unwrap_for_session(token, by_session) == key
    for guess in (content_keys.token_digest(token), "another-token"):
        with pytest.raises(WrongKey):  # the stored digest of the token opens nothing
            content_keys.unwrap_for_session(guess, by_session)


def test_the_column_type_seals_opens_and_refuses_without_the_key() -> None:
    key = content_keys.new_content_key()
    plain = sealing.seal_for_write("plain for everyone")
    assert plain == "plain for everyone"
    lookalike = sealing.seal_for_write("zs1:not sealed at all")
    assert sealing.open_for_read(lookalike) == "zs1:not sealed at all"  # stored escaped
    with sealing.sealing(Sealing(user_id=1, key=key, seal_writes=True)):
        sealed = sealing.seal_for_write("mine")
        assert content_keys.is_sealed(sealed) and sealing.open_for_read(sealed) == "mine"
    assert sealing.open_for_read(sealed) == content_keys.PLACEHOLDER
    with sealing.sealing(Sealing(user_id=2, key=content_keys.new_content_key(), seal_writes=True)):
        assert sealing.open_for_read(sealed) == content_keys.PLACEHOLDER  # another user's key
    with (
        sealing.sealing(Sealing(user_id=1, key=None, seal_writes=True)),
        pytest.raises(ContentLocked),
    ):
        sealing.seal_for_write("written without the key")
    with sealing.sealing(Sealing(user_id=1, key=key, seal_writes=False)):  # being turned off
        assert sealing.seal_for_write("now plain") == "now plain"
        assert sealing.open_for_read(sealed) == "mine"
