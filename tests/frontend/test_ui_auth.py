"""Sign in, registration, redirects and sign-out, as a visitor does them."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .ui_helpers import PASSWORD, Server, User


def test_signed_out_visitors_are_sent_to_sign_in(page_as: Callable[..., Page]) -> None:
    page = page_as()
    for path in ["/", "/index.html", "/settings.html", "/admin.html"]:
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/login\.html"))
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    # The page asked for is remembered and reached after signing in.
    page.goto("/settings.html")
    expect(page).to_have_url(re.compile(r"/login\.html\?next=%2Fsettings\.html"))


def test_sign_in_errors_and_next_destination(
    page_as: Callable[..., Page], make_user: Callable[..., User]
) -> None:
    user = make_user()
    page = page_as()
    page.goto("/settings.html")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Enter your username and password.")

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    expect(page).to_have_url(re.compile(r"/login\.html"))

    page.get_by_label("Password").fill(user.password)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(re.compile(r"/settings\.html$"))
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()


def test_register_validates_then_signs_in_and_out(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    taken = make_user()
    page = page_as()
    page.goto("/login.html")
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/register\.html$"))
    alert = page.get_by_role("alert")
    create = page.get_by_role("button", name="Create account")

    username = server.unique("reg")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill(PASSWORD)  # one match: the confirmation has its own name
    page.get_by_label("Confirmation").fill(PASSWORD)
    create.click()
    expect(alert).to_have_text("Enter a valid email address.")

    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Confirmation").fill("short")
    create.click()
    expect(alert).to_have_text("The password must have at least 8 characters.")

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirmation").fill(PASSWORD + "x")
    create.click()
    expect(alert).to_have_text("The two passwords do not match.")
    expect(page.get_by_label("Confirmation")).to_have_attribute("aria-invalid", "true")

    # A name that is already taken: the server's answer is shown as it is.
    page.get_by_label("Username").fill(taken.username)
    page.get_by_label("Confirmation").fill(PASSWORD)
    create.click()
    expect(alert).to_contain_text("cannot be used")
    expect(page).to_have_url(re.compile(r"/register\.html$"))

    page.get_by_label("Username").fill(username)
    create.click()
    expect(page).to_have_url(re.compile(r"/(\?.*)?$"))
    expect(page.get_by_role("button", name="New chat")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(username)
    # Only admins see the admin link.
    expect(page.get_by_role("link", name="Admin")).to_be_hidden()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\.html"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\.html"))
    # The old session is gone on the server too.
    assert page.request.get("/api/auth/me").status == 401


HOSTILE_NEXT = [
    "/\t/127.0.0.1:8799/phish",
    "/\n/127.0.0.1:8799/phish",
    "/\r/127.0.0.1:8799/phish",
    "//127.0.0.1:8799/phish",
    "/\\127.0.0.1:8799/phish",
    "/\\/127.0.0.1:8799/phish",
    "javascript:alert(document.domain)",
    "https://127.0.0.1:8799/phish",
    "/login.html?next=//127.0.0.1:8799/",
]


def test_sign_in_never_leaves_the_origin(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    from urllib.parse import quote

    user = make_user()
    page = page_as(user)  # already signed in: the sign-in page goes straight to `next`
    for hostile in HOSTILE_NEXT:
        page.goto(f"/login.html?next={quote(hostile, safe='')}")
        expect(page).to_have_url(f"{server.url}/", timeout=5_000)
        expect(page.get_by_role("button", name="New chat")).to_be_visible()
    # A path that resolves to `//host` on this origin stays on this origin.
    page.goto(f"/login.html?next={quote('/.//127.0.0.1:8799/phish', safe='')}")
    page.wait_for_url(re.compile(r"^" + re.escape(server.url) + r"//127\.0\.0\.1:8799/phish$"))
    # Own pages keep their query and fragment.
    page.goto(f"/login.html?next={quote('/settings.html?from=x#account', safe='')}")
    expect(page).to_have_url(f"{server.url}/settings.html?from=x#account")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_typed_sign_in_with_a_tab_in_next_lands_on_the_origin(
    page_as: Callable[..., Page], make_user: Callable[..., User], server: Server
) -> None:
    user = make_user()
    page = page_as()
    page.goto("/login.html?next=%2F%09%2F127.0.0.1:8799%2Fphish")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/")
