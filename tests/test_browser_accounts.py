"""The account pages in Chromium: a person makes an API token, sees its key once, uses it, revokes it."""
import os
import re
from pathlib import Path

import pytest
import requests

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SYNAPSE_SCREENSHOTS")  # a folder: the test saves what it sees there


@pytest.fixture
def page(browser, live_server, users):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "tester")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/my-work/"))
    yield page
    context.close()


def shot(page, name):
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_a_token_made_on_the_page_works_until_revoked(page, live_server):
    page.click("text=API tokens")
    page.get_by_label("Token name").fill("billing sync")
    page.click("button:has-text('Create token')")
    key = page.get_by_label("Your new key (shown once)").input_value()
    shot(page, "api_tokens")
    me = requests.get(f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert me.json()["username"] == "tester"

    page.reload()
    assert key not in page.content()  # shown once
    assert page.locator("td", has_text="billing sync").count() == 1
    page.click("button[aria-label='Revoke billing sync']")
    assert page.locator("td", has_text="revoked").count() == 1
    gone = requests.get(f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert gone.status_code == 401 and gone.headers["Content-Type"] == "application/problem+json"

    page.click("text=Password")
    page.get_by_label("Old password").fill("wrong")
    page.get_by_label("New password", exact=True).fill("x")
    page.get_by_label("New password confirmation").fill("x")
    page.click("button:has-text('Change password')")
    assert page.locator(".field-error").count() >= 1
    shot(page, "password_change")
