"""Accounts: named API tokens (page and API), /me/, the user directory, login lockout, password change, sessions."""
import hashlib

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import PASSWORD
from synapse.models import ApiToken
from synapse.testing import problem

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bearer(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_person_creates_a_named_token_on_the_page_uses_it_and_revokes_it(users, cycle_report):
    page = logged_in(users["tester"])
    response = page.post("/account/tokens/", {"name": "billing sync"})
    assert response.status_code == 200
    key = response.context["new_key"]
    token = ApiToken.objects.get(user=users["tester"], name="billing sync")
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in str(vars(token))
    assert token.last_used_at is None

    assert bearer(key).get("/api/v1/me/").json()["username"] == "tester"
    token.refresh_from_db()
    assert token.last_used_at is not None
    listing = page.get("/account/tokens/").content.decode()
    assert "billing sync" in listing and key not in listing and "never" not in listing

    # Someone else can't revoke it (and doesn't see it); its owner can.
    logged_in(users["tester2"]).post(f"/account/tokens/{token.pk}/revoke/")
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert "billing sync" not in logged_in(users["tester2"]).get("/account/tokens/").content.decode()
    page.post(f"/account/tokens/{token.pk}/revoke/")
    problem(bearer(key).get("/api/v1/me/"), 401, "authentication_failed")


def test_a_token_needs_a_name_and_names_are_unique_among_active_tokens(users):
    page = logged_in(users["tester"])
    assert page.post("/account/tokens/", {"name": ""}).context["form"].errors["name"]
    page.post("/account/tokens/", {"name": "ci"})
    errors = page.post("/account/tokens/", {"name": "ci"}).context["form"].errors["name"]
    assert "already have an active token" in errors[0]


def test_an_admin_sees_and_revokes_anyones_tokens(users):
    api = APIClient()
    api.force_login(users["tester"])
    created = api.post("/api/v1/tokens/", {"name": "etl"}, format="json")
    assert created.status_code == 201 and created.json()["key"]
    token_id = created.json()["id"]

    owner = APIClient()
    owner.force_login(users["owner"])
    problem(owner.get(f"/api/v1/tokens/{token_id}/"), 404)
    assert owner.get("/api/v1/tokens/").json()["count"] == 0

    admin = APIClient()
    admin.force_login(users["admin"])
    assert [t["user"] for t in admin.get("/api/v1/tokens/").json()["results"]] == ["tester"]
    assert "etl" in logged_in(users["admin"]).get("/account/tokens/").content.decode()
    assert admin.delete(f"/api/v1/tokens/{token_id}/").json()["active"] is False
    problem(bearer(created.json()["key"]).get("/api/v1/me/"), 401)


def test_me_says_who_and_which_roles(users):
    api = APIClient()
    api.force_login(users["executive"])
    body = api.get("/api/v1/me/").json()
    assert body["username"] == "executive" and body["roles"] == ["Data Executive"]


def test_the_user_directory_shows_only_what_a_role_may_see(users):
    def usernames(user, **params):
        api = APIClient()
        api.force_login(user)
        return {u["username"] for u in api.get("/api/v1/users/", params).json()["results"]}

    assert usernames(users["manager"], role="Tester") == {"tester", "tester2"}
    assert usernames(users["admin"], role="Data Owner") == {"dataowner", "dataowner2"}
    assert usernames(users["executive"]) == {"executive", "dataowner", "dataowner2"}
    assert usernames(users["executive"], role="Tester") == set()
    assert usernames(users["tester"]) == {"tester"}
    assert usernames(users["data_owner"]) == {"dataowner"}
    api = APIClient()
    api.force_login(users["manager"])
    problem(api.get("/api/v1/users/", {"role": "Emperor"}), 400)


def test_lobs_show_the_data_executive_only_to_those_who_may_see_that_user(users, lob):
    def executive_of_first(user):
        api = APIClient()
        api.force_login(user)
        return api.get("/api/v1/lobs/").json()["results"][0]["data_executive"]

    assert executive_of_first(users["manager"])["username"] == "executive"
    assert executive_of_first(users["executive"])["username"] == "executive"
    assert executive_of_first(users["data_owner"]) is None


def test_login_is_locked_after_repeated_failures_even_with_the_right_password(users, settings):
    settings.AXES_FAILURE_LIMIT = 5
    client = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(5):
        client.post("/login/", {"username": "tester", "password": "wrong"})
    response = client.post("/login/", {"username": "tester", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Someone else, from elsewhere, is not locked out by it.
    other = Client(REMOTE_ADDR="10.0.0.8")
    assert other.post("/login/", {"username": "tester2", "password": PASSWORD}).status_code == 302


def test_a_person_changes_their_password_on_a_page(users):
    client = Client()
    assert client.post("/login/", {"username": "tester", "password": PASSWORD}).status_code == 302
    page = client.get("/account/password/").content.decode()
    assert 'for="id_old_password"' in page and 'for="id_new_password1"' in page
    wrong = client.post("/account/password/", {"old_password": "nope", "new_password1": "x", "new_password2": "x"})
    assert wrong.status_code == 200 and wrong.context["form"].errors["old_password"]
    new = "a-much-better-passphrase-42"
    done = client.post("/account/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert done.status_code == 302
    users["tester"].refresh_from_db()
    assert users["tester"].check_password(new)


def test_the_session_ends_after_being_idle(users, settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    client = Client()
    client.post("/login/", {"username": "tester", "password": PASSWORD})
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timezone.timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302
    assert "/login/" in client.get(response["Location"])["Location"]


def test_a_request_renews_the_session_at_most_once_a_renewal_interval(users, settings):
    """The idle timeout is renewed by requests, but a page doesn't write the session each time."""
    from synapse.middleware import RENEWED_AT

    assert settings.SESSION_RENEW_SECONDS == 60
    client = Client()
    client.post("/login/", {"username": "tester", "password": PASSWORD})
    key = client.session.session_key
    assert client.get("/").status_code in (200, 302)  # the first request after logging in renews

    def expiry():
        return Session.objects.get(session_key=key).expire_date

    soon = timezone.now() + timezone.timedelta(minutes=5)
    Session.objects.filter(session_key=key).update(expire_date=soon)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code in (200, 302)
    assert not [q for q in queries.captured_queries if 'UPDATE "django_session"' in q["sql"]]
    assert expiry() == soon  # renewed a moment ago: left as it is
    # A minute after the last renewal, a request renews it for SESSION_IDLE_SECONDS from now.
    session = client.session
    session[RENEWED_AT] -= 60
    session.save()
    Session.objects.filter(session_key=key).update(expire_date=soon)
    before = timezone.now()
    assert client.get("/").status_code in (200, 302)
    assert expiry() >= before + timezone.timedelta(seconds=settings.SESSION_COOKIE_AGE)


def test_an_anonymous_visit_saves_no_session(db):
    client = Client()
    client.get("/login/")
    assert not Session.objects.exists()
