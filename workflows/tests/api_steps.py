"""What the API-alone integration tests share: each person's own token client, the response check and the
population the reports are tested on."""
from __future__ import annotations

from rest_framework.test import APIClient

FIELDS = [{"name": "account_id", "description": "Unique account identifier"},
          {"name": "balance", "description": "Outstanding balance in USD"},
          {"name": "origination_date", "description": "Date the loan was originated"}]


def population_csv(rows: int = 60) -> bytes:
    lines = ["account_id,balance,origination_date"]
    lines += [f"A{i:04d},{1000 + i * 7.5:.2f},2024-0{1 + i % 9}-1{i % 10}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def token_client(user) -> APIClient:
    """The person makes a named token through the API, then uses only that."""
    session = APIClient()
    session.force_login(user)
    created = session.post("/api/v1/tokens/", {"name": "integration"}, format="json")
    assert created.status_code == 201, created.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.json()['key']}")
    assert client.get("/api/v1/me/").json()["username"] == user.username
    return client


def ok(response, *codes: int):
    """The response's JSON body, after checking its status (200 unless given)."""
    assert response.status_code in (codes or (200,)), (response.status_code, response.content[:2000])
    return response.json()
