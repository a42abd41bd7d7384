"""The data owner's request email names samples by key, in natural order, with the values to evidence."""
import pytest

from cycles.models import Sample, SamplingPlan
from cycles.services.notifications import request_notify
from cycles.services.requests import data_owners_assign_bulk, information_requests_create
from cycles.tests.test_requests import DUE, approve_samples, open_doi, scoped_attributes

KEYS = ("1163", "186", "1145", "217")


@pytest.fixture
def request_with_samples(cycle_report, users, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    attributes = scoped_attributes(cycle_report, users["tester"])
    open_doi(cycle_report)
    data_owners_assign_bulk(user=users["executive"], cycle_report=cycle_report, data_owner=users["data_owner"],
                            attribute_ids=[a.pk for name, a in attributes.items() if name != "notes"])
    for i, key in enumerate(KEYS):
        Sample.objects.create(
            cycle_report=cycle_report, key=key, row_index=int(key) - 1, method=SamplingPlan.Method.RANDOM,
            row_data={"account_id": f"A{key}", "balance": "" if key == "186" else f"{int(key) * 10}.00",
                      "customer_name": f"Customer {i}"},
            added_by=users["tester"],
        )
    approve_samples(cycle_report, users, keys=KEYS)
    [request] = information_requests_create(cycle_report_id=cycle_report.pk, due_date=DUE)
    return request


def test_samples_are_listed_in_natural_order_with_the_values_the_data_owner_needs(request_with_samples, mailoutbox):
    assert request_with_samples.sample_keys == ["186", "217", "1145", "1163"]

    request_notify(request_id=request_with_samples.pk, kind="request")

    [message] = mailoutbox
    lines = [line.strip() for line in message.body.splitlines() if line.strip().startswith("- ")]
    sample_lines = [line for line in lines if line[2:].split(" ")[0] in KEYS]
    assert sample_lines == [
        "- 186 — account_id: A186, balance: (empty), customer_name: Customer 1",
        "- 217 — account_id: A217, balance: 2170.00, customer_name: Customer 3",
        "- 1145 — account_id: A1145, balance: 11450.00, customer_name: Customer 2",
        "- 1163 — account_id: A1163, balance: 11630.00, customer_name: Customer 0",
    ]
