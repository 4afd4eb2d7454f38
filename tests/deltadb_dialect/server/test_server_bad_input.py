"""Bad input on the entity server is a 4xx with a sentence, never a 500: lone surrogates in
any string, huge or non-finite lifetimes, signed in or not."""

import pytest
from ddb_server_helpers import Api

SURROGATE_BODY = '{"key": "\\ud800"}'


def test_a_lone_surrogate_at_login_is_refused(api: Api) -> None:
    response = api.client.post(
        "/api/login", content=SURROGATE_BODY, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/api/keys", "POST", '{"name": "\\ud800", "permissions": ["read"]}'),
        ("/entity/notes", "PUT", '{"key": "a", "data": {"v": "\\ud800"}}'),
        ("/api/keys", "POST", '{"name": "k", "permissions": ["read"], "expires_in": 1e308}'),
        ("/api/keys", "POST", '{"name": "k", "permissions": ["read"], "expires_in": 1e30}'),
    ],
)
def test_bad_strings_and_numbers_are_4xx(api: Api, path: str, method: str, body: str) -> None:
    headers = api.admin() | {"Content-Type": "application/json"}
    response = api.client.request(method, path, content=body, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
