"""Population files: upload checks, the polars profiling engine, and storing profiles."""
import datetime
import hashlib
import io
import zipfile

import polars as pl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cycles.exceptions import InvalidFileError, NotFoundError, PermissionDeniedError, PhaseLockedError
from cycles.models import Attribute, Phase, PopulationFile, ProfileResult
from cycles.profiling import ColumnExpectation, PopulationReadError, profile_frame, profile_population
from cycles.services import profiling as profiling_services
from cycles.services.profiling import population_file_latest, population_file_profile, population_file_upload
from synapse.models import AuditEvent

# A small population with one of each problem the profile must find.
CSV_TEXT = (
    "account_id,customer_name,balance,origination_date,is_delinquent\n"
    "1,Ann,100.50,2024-01-31,false\n"
    "2,Bob,,2024-02-30,true\n"  # an impossible date, a missing balance
    "3,,n/a,2024-03-01,false\n"  # an empty name, a balance that is not a number
    "3,Cy,300,,maybe\n"  # a repeated key, a missing date, a word that is not a boolean
    "x9,Ann,-20.25,2023-12-01,no\n"  # a key that is not an integer
)
EXPECT = {
    "account_id": ColumnExpectation("integer", mandatory=True, primary_key=True),
    "customer_name": ColumnExpectation("string", mandatory=True),
    "balance": ColumnExpectation("decimal"),
    "origination_date": ColumnExpectation("date", mandatory=True),
    "is_delinquent": ColumnExpectation("boolean"),
}


def by_name(profiles):
    return {p.name: p for p in profiles}


# -- the engine ---------------------------------------------------------------------


def test_profile_of_a_csv_counts_nulls_distincts_ranges_violations_and_rules(tmp_path):
    path = tmp_path / "population.csv"
    path.write_text(CSV_TEXT)

    profiles = by_name(profile_population(path, "csv", EXPECT))

    key = profiles["account_id"]
    assert (key.row_count, key.null_count, key.distinct_count) == (5, 0, 4)
    assert (key.min_value, key.max_value) == ("1", "3")
    assert key.format_violations == 1
    assert key.rule_failures == {"mandatory": 0, "primary_key": 1}
    assert key.top_values[0] == {"value": "3", "count": 2}

    name = profiles["customer_name"]
    assert (name.null_count, name.distinct_count, name.min_value, name.max_value) == (1, 3, "Ann", "Cy")
    assert name.rule_failures == {"mandatory": 1}
    assert name.top_values == [{"value": "Ann", "count": 2}, {"value": "Bob", "count": 1}, {"value": "Cy", "count": 1}]

    balance = profiles["balance"]
    assert (balance.null_count, balance.format_violations) == (1, 1)
    assert (balance.min_value, balance.max_value) == ("-20.25", "300.0")
    assert balance.rule_failures == {}

    dates = profiles["origination_date"]
    assert (dates.null_count, dates.format_violations) == (1, 1)
    assert (dates.min_value, dates.max_value) == ("2023-12-01", "2024-03-01")
    assert dates.rule_failures == {"mandatory": 1}

    flags = profiles["is_delinquent"]
    assert (flags.format_violations, flags.min_value, flags.max_value) == (1, "false", "true")
    assert flags.top_values[0] == {"value": "false", "count": 2}


def test_types_are_detected_from_the_data_when_no_attribute_says(tmp_path):
    path = tmp_path / "population.csv"
    path.write_text(
        "id;amount;day;flag;note\n"
        + "".join(f"{i};{i}.5;01/0{i}/2024;{'yes' if i % 2 else 'no'};n{i}\n" for i in range(1, 10))
    )

    profiles = by_name(profile_population(path, "csv"))

    assert {n: p.dtype for n, p in profiles.items()} == {
        "id": "integer", "amount": "decimal", "day": "date", "flag": "boolean", "note": "string",
    }
    # 01/02/2024 .. 01/09/2024 parse as day/month first, so the range spans January to September.
    assert (profiles["day"].min_value, profiles["day"].max_value) == ("2024-01-01", "2024-09-01")
    assert all(p.format_violations == 0 for p in profiles.values())


def test_ties_in_top_values_are_broken_by_value_and_cut_at_five(tmp_path):
    path = tmp_path / "population.csv"
    path.write_text("code\n" + "\n".join(["g", "f", "e", "d", "c", "b", "a", "z", "z"]) + "\n")

    (profile,) = profile_population(path, "csv")

    assert profile.top_values == [
        {"value": "z", "count": 2}, {"value": "a", "count": 1}, {"value": "b", "count": 1},
        {"value": "c", "count": 1}, {"value": "d", "count": 1},
    ]


def test_typed_parquet_columns_are_judged_against_their_attribute(tmp_path):
    path = tmp_path / "population.parquet"
    pl.DataFrame(
        {
            "account_id": [1, 2, 2, None],
            "balance": [1.0, 2.5, None, 4.0],
            "opened": [datetime.date(2024, 1, 1), None, datetime.date(2023, 5, 6), datetime.date(2024, 2, 2)],
            "as_of": [20240101, 20240230, 20240301, None],
        }
    ).write_parquet(path)
    expect = {
        "account_id": ColumnExpectation("integer", primary_key=True),
        "balance": ColumnExpectation("integer"),  # 2.5 is not a whole number
        "opened": ColumnExpectation("date"),
        "as_of": ColumnExpectation("date"),  # integers judged as text: no ISO dates among them
    }

    profiles = by_name(profile_population(path, "parquet", expect))

    assert profiles["account_id"].source_dtype == "Int64"
    assert (profiles["account_id"].null_count, profiles["account_id"].distinct_count) == (1, 2)
    assert profiles["account_id"].rule_failures == {"primary_key": 1}
    assert (profiles["balance"].dtype, profiles["balance"].format_violations) == ("decimal", 1)
    assert (profiles["opened"].format_violations, profiles["opened"].min_value) == (0, "2023-05-06")
    assert profiles["as_of"].format_violations == 3


def test_lists_categories_and_decimals_in_parquet_are_profiled(tmp_path):
    import decimal

    path = tmp_path / "odd.parquet"
    pl.DataFrame(
        {
            "tags": [[1], [1, 2], None, [1]],
            "grade": pl.Series(["a", "b", "a", None]).cast(pl.Categorical),
            "units": [decimal.Decimal("1.50"), decimal.Decimal("2.00"), None, decimal.Decimal("3.00")],
        }
    ).write_parquet(path)

    profiles = by_name(profile_population(path, "parquet", {"units": ColumnExpectation("integer")}))

    assert (profiles["tags"].null_count, profiles["tags"].distinct_count, profiles["tags"].top_values) == (1, 2, [])
    assert profiles["grade"].top_values == [{"value": "a", "count": 2}, {"value": "b", "count": 1}]
    assert (profiles["units"].format_violations, profiles["units"].max_value) == (1, "3.00")


def test_xlsx_gives_the_same_statistics_as_csv(tmp_path):
    csv_path, xlsx_path = tmp_path / "p.csv", tmp_path / "p.xlsx"
    csv_path.write_text(CSV_TEXT)
    pl.read_csv(csv_path, infer_schema=False).write_excel(xlsx_path)

    from_csv = by_name(profile_population(csv_path, "csv", EXPECT))
    from_xlsx = by_name(profile_population(xlsx_path, "xlsx", EXPECT))

    assert from_xlsx == from_csv


def test_numbers_and_dates_typed_in_excel_cells_are_profiled(tmp_path):
    path = tmp_path / "typed.xlsx"
    pl.DataFrame(
        {"amount": [1.5, 2.0, None], "opened": [datetime.date(2024, 1, 1), None, datetime.date(2024, 3, 1)]}
    ).write_excel(path)

    profiles = by_name(profile_population(path, "xlsx", {"amount": ColumnExpectation("decimal")}))

    assert (profiles["amount"].min_value, profiles["amount"].max_value) == ("1.5", "2.0")
    assert profiles["opened"].dtype == "date"
    assert (profiles["opened"].min_value, profiles["opened"].max_value) == ("2024-01-01", "2024-03-01")
    assert profiles["opened"].null_count == 1


def test_profile_frame_takes_a_dataframe_and_matches_expectations_ignoring_case():
    frame = pl.DataFrame({"Account_ID": ["1", "2", "2", ""]})

    (profile,) = profile_frame(frame, {"account_id": ColumnExpectation("integer", True, True)})

    assert (profile.null_count, profile.distinct_count) == (1, 2)
    assert profile.rule_failures == {"mandatory": 1, "primary_key": 1}


def test_a_ragged_csv_is_a_read_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")

    with pytest.raises(PopulationReadError, match="more fields than the header"):
        profile_population(path, "csv")


# -- uploading ----------------------------------------------------------------------


def stored_files(storage):
    return [p for p in storage.rglob("*") if p.is_file()]


@pytest.fixture
def profiling_report(cycle_report):
    cycle_report.phase = Phase.DATA_PROFILING
    cycle_report.save(update_fields=["phase"])
    return cycle_report


def upload(user, cycle_report, name, content: bytes, declared_format=None):
    return population_file_upload(
        user=user,
        cycle_report=cycle_report,
        uploaded_file=SimpleUploadedFile(name, content),
        declared_format=declared_format,
    )


def test_the_assigned_tester_uploads_a_csv_hashed_and_stored_privately(storage, users, profiling_report):
    content = CSV_TEXT.encode()

    population_file = upload(users["tester"], profiling_report, "Loans Q3.csv", content)

    population_file.refresh_from_db()
    assert population_file.status == PopulationFile.Status.UPLOADED
    assert population_file.format == "csv"
    assert population_file.original_name == "Loans Q3.csv"
    assert population_file.size_bytes == len(content)
    assert population_file.sha256 == hashlib.sha256(content).hexdigest()
    assert population_file.file.name.startswith("populations/")
    with population_file.file.open("rb") as stored:
        assert stored.read() == content
    assert [p.parent.parent.parent.name for p in stored_files(storage)] == ["populations"]
    event = AuditEvent.objects.get(action="population.upload")
    assert event.actor == users["tester"] and event.object_id == str(population_file.pk)


def test_a_declared_format_overrides_the_extension(storage, users, profiling_report):
    population_file = upload(users["tester"], profiling_report, "export.txt", CSV_TEXT.encode(), "CSV")

    assert population_file.format == "csv"
    assert population_file.file.name.endswith(".csv")


def test_a_multibyte_character_across_a_chunk_boundary_is_valid(storage, users, profiling_report):
    boundary = profiling_services.CHUNK_BYTES
    head = "name,city\n"
    filler = "a" * (boundary - len(head) - 1)
    content = (head + filler + "é,x\n").encode()  # é's two bytes straddle the first chunk's end
    assert content[boundary - 1 : boundary + 1] == "é".encode()

    population_file = upload(users["tester"], profiling_report, "p.csv", content)

    assert population_file.size_bytes == len(content)


def _zip_bytes(names):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "hello")
    return buffer.getvalue()


def _xlsx_bytes(tmp_path, rows):
    import xlsxwriter

    path = tmp_path / "made.xlsx"
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet()
    for index, row in enumerate(rows):
        sheet.write_row(index, 0, row)
    workbook.close()
    return path.read_bytes()


def _parquet_bytes(frame):
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


LATER_BAD_BYTE = b"a,b\n" + b"1,2\n" * 300_000 + b"3,\xff\n"

BAD_FILES = [
    ("empty", "p.csv", b"", None, "The file is empty."),
    ("blank lines", "p.csv", b"\n\n  \n", None, "only blank lines"),
    ("numeric first row", "p.csv", b"1,2.5,2024-01-01\n4,5,2024-01-02\n", None, "holds values, not column names"),
    ("header only", "p.csv", b"a,b\n", None, "header row but no data rows"),
    ("header and empty row", "p.csv", b"a,b\n,\n", None, "header row but no data rows"),
    ("unnamed column", "p.csv", b"a,,c\n1,2,3\n", None, "Column 2 has no name"),
    ("repeated column", "p.csv", b"id,ID\n1,2\n", None, "names the column 'ID' twice"),
    ("latin-1", "p.csv", "name\ncafé\n".encode("latin-1"), None, "is not valid UTF-8 at byte 8 (line 2)"),
    ("latin-1 after a byte-order mark", "p.csv", "\ufeffname\ncafé\n".encode("utf-8")[:11] + b"\xe9\n", None,
     "is not valid UTF-8 at byte 11 (line 2)"),
    ("utf-16", "p.csv", "a,b\n1,2\n".encode("utf-16"), None, "is not valid UTF-8 at byte 0 (line 1)"),
    ("utf-16 without a mark", "p.csv", "a,b\n1,2\n".encode("utf-16-le"), None,
     "contains a NUL byte at byte 1 (line 1); it looks like UTF-16"),
    ("bad byte in a later chunk", "p.csv", LATER_BAD_BYTE, None, f"at byte {len(LATER_BAD_BYTE) - 2:,} (line 300,002)"),
    ("nul bytes", "p.csv", b"a,b\n1\x002\n", None, "contains a NUL byte"),
    ("unknown extension", "p.txt", b"a,b\n1,2\n", None, "does not end in .csv, .xlsx or .parquet"),
    ("unknown declared format", "p.csv", b"a,b\n1,2\n", "json", "is not a population file format"),
    ("csv named xlsx", "p.xlsx", b"a,b\n1,2\n", None, "The file is not an Excel workbook (.xlsx) as"),
    ("csv declared parquet", "p.csv", b"a,b\n1,2\n", "parquet", "The file is not a Parquet file as"),
    ("zip that is not a workbook", "p.xlsx", _zip_bytes(["hello.txt"]), None, "not an Excel workbook"),
    ("workbook named csv", "p.csv", _zip_bytes(["xl/workbook.xml"]), None,
     "is an Excel workbook (.xlsx), not CSV text"),
    ("parquet named csv", "p.csv", _parquet_bytes(pl.DataFrame({"a": [1]})), None, "is a Parquet file, not CSV text"),
    ("truncated parquet", "p.parquet", _parquet_bytes(pl.DataFrame({"a": [1]}))[:-10], None, "not a Parquet file"),
    ("parquet without rows", "p.parquet", _parquet_bytes(pl.DataFrame({"a": []}, schema={"a": pl.Int64})),
     None, "columns but no rows"),
]


@pytest.mark.parametrize(("name", "content", "declared", "message"), [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_refused_with_a_clear_message_and_nothing_stored(
    storage, users, profiling_report, name, content, declared, message
):
    with pytest.raises(InvalidFileError) as caught:
        upload(users["tester"], profiling_report, name, content, declared)

    assert message in caught.value.message
    assert PopulationFile.objects.count() == 0
    assert not AuditEvent.objects.filter(action="population.upload").exists()
    assert stored_files(storage) == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["account_id", None, "x"], [1, 2, 3]], "Column 2 has no name"),
        ([["account_id", "balance"]], "header row but no data rows"),
        ([[1, 2], [3, 4]], "holds values, not column names"),
        ([], "is empty"),
    ],
    ids=["unnamed column", "header only", "no header", "empty sheet"],
)
def test_a_bad_workbook_is_refused_and_nothing_stored(storage, users, profiling_report, rows, message):
    content = _xlsx_bytes(storage, rows)
    (storage / "made.xlsx").unlink()

    with pytest.raises(InvalidFileError, match=message):
        upload(users["tester"], profiling_report, "p.xlsx", content)

    assert PopulationFile.objects.count() == 0
    assert stored_files(storage) == []


def test_a_file_over_the_size_limit_is_refused(storage, settings, users, profiling_report):
    settings.POPULATION_MAX_BYTES = 1024

    with pytest.raises(InvalidFileError, match="larger than the 1,024 bytes allowed"):
        upload(users["tester"], profiling_report, "p.csv", b"a,b\n" + b"1,2\n" * 300)

    assert PopulationFile.objects.count() == 0
    assert stored_files(storage) == []


def test_the_size_limit_holds_while_streaming_when_the_size_is_not_known(storage, settings, users, profiling_report):
    settings.POPULATION_MAX_BYTES = 1024
    uploaded = SimpleUploadedFile("p.csv", b"a,b\n" + b"1,2\n" * 300)
    uploaded.size = None

    with pytest.raises(InvalidFileError, match="larger than"):
        population_file_upload(user=users["tester"], cycle_report=profiling_report, uploaded_file=uploaded)

    assert stored_files(storage) == []


@pytest.mark.parametrize("who", ["tester2", "manager", "owner", "admin"])
def test_only_the_assigned_tester_can_upload(storage, users, profiling_report, who):
    with pytest.raises(PermissionDeniedError):
        upload(users[who], profiling_report, "p.csv", CSV_TEXT.encode())

    assert PopulationFile.objects.count() == 0


@pytest.mark.parametrize("phase", ["", Phase.PLANNING, Phase.SAMPLE_SELECTION])
def test_uploads_are_refused_outside_data_profiling(storage, users, cycle_report, phase):
    cycle_report.phase = phase
    cycle_report.save(update_fields=["phase"])

    with pytest.raises(PhaseLockedError):
        upload(users["tester"], cycle_report, "p.csv", CSV_TEXT.encode())

    assert PopulationFile.objects.count() == 0
    assert stored_files(storage) == []


# -- profiling a stored file ---------------------------------------------------------------


@pytest.fixture
def attributes(profiling_report):
    def make(name, data_type, mandatory=False, primary_key=False):
        return Attribute.objects.create(
            cycle_report=profiling_report, name=name, data_type=data_type, mandatory=mandatory, primary_key=primary_key
        )

    return {
        "account_id": make("Account_ID", "integer", mandatory=True, primary_key=True),
        "balance": make("balance", "decimal", mandatory=True),
        "origination_date": make("origination_date", "date"),
        "unused": make("not_in_file", "string"),
    }


def test_profiling_stores_a_result_per_column_linked_to_its_attribute(storage, users, profiling_report, attributes):
    uploaded = upload(users["tester"], profiling_report, "p.csv", CSV_TEXT.encode())

    population_file = population_file_profile(population_file_id=uploaded.pk)

    population_file.refresh_from_db()
    assert population_file.status == PopulationFile.Status.PROFILED
    assert population_file.row_count == 5
    assert population_file.columns == [
        "account_id", "customer_name", "balance", "origination_date", "is_delinquent",
    ]
    assert population_file.profiled_at is not None and population_file.profile_seconds >= 0
    results = {r.column_name: r for r in ProfileResult.objects.filter(population_file=population_file)}
    assert results["account_id"].attribute == attributes["account_id"]
    assert results["account_id"].rule_failures == {"mandatory": 0, "primary_key": 1}
    assert results["account_id"].format_violations == 1
    assert results["balance"].attribute == attributes["balance"]
    assert results["balance"].rule_failures == {"mandatory": 1}
    assert (results["balance"].min_value, results["balance"].max_value) == ("-20.25", "300.0")
    assert results["origination_date"].format_violations == 1
    assert results["customer_name"].attribute is None
    assert results["customer_name"].rule_failures == {}
    assert results["customer_name"].top_values[0] == {"value": "Ann", "count": 2}
    assert AuditEvent.objects.filter(action="population.profile", object_id=str(population_file.pk)).exists()


def test_profiling_again_replaces_the_results(storage, users, profiling_report, attributes):
    uploaded = upload(users["tester"], profiling_report, "p.csv", CSV_TEXT.encode())
    population_file_profile(population_file_id=uploaded.pk)
    first_ids = set(ProfileResult.objects.values_list("pk", flat=True))
    attributes["balance"].mandatory = False
    attributes["balance"].data_type = "string"
    attributes["balance"].save()

    population_file_profile(population_file_id=uploaded.pk)

    results = ProfileResult.objects.filter(population_file=uploaded)
    assert results.count() == 5
    assert first_ids.isdisjoint(results.values_list("pk", flat=True))
    balance = results.get(column_name="balance")
    assert (balance.rule_failures, balance.format_violations) == ({}, 0)
    assert balance.max_value == "n/a"


def test_an_unreadable_stored_file_marks_the_profile_failed(storage, users, profiling_report):
    uploaded = upload(users["tester"], profiling_report, "p.csv", b"a,b\n1,2\n")
    population_file_profile(population_file_id=uploaded.pk)
    with open(uploaded.file.path, "wb") as damaged:
        damaged.write(b"a,b\n1,2\n3,4,5\n")

    with pytest.raises(InvalidFileError, match="more fields than the header"):
        population_file_profile(population_file_id=uploaded.pk)

    uploaded.refresh_from_db()
    assert uploaded.status == PopulationFile.Status.FAILED
    assert "more fields than the header" in uploaded.error
    # The last good profile stays until a profile succeeds.
    assert ProfileResult.objects.filter(population_file=uploaded).count() == 2


def test_a_missing_stored_file_marks_the_profile_failed(storage, users, profiling_report):
    uploaded = upload(users["tester"], profiling_report, "p.csv", b"a,b\n1,2\n")
    uploaded.file.storage.delete(uploaded.file.name)

    with pytest.raises(InvalidFileError, match="could not be read as CSV: the stored file is missing"):
        population_file_profile(population_file_id=uploaded.pk)

    uploaded.refresh_from_db()
    assert uploaded.status == PopulationFile.Status.FAILED


def test_profiling_an_unknown_file_is_not_found(db):
    with pytest.raises(NotFoundError):
        population_file_profile(population_file_id=987654)


def test_xlsx_and_parquet_uploads_profile(storage, users, profiling_report, attributes, tmp_path):
    frame = pl.read_csv(io.StringIO(CSV_TEXT), infer_schema=False)
    xlsx = tmp_path / "p.xlsx"
    frame.write_excel(xlsx)
    parquet = _parquet_bytes(pl.DataFrame({"account_id": [1, 2, 2], "balance": [1.5, None, 3.0]}))

    from_xlsx = population_file_profile(
        population_file_id=upload(users["tester"], profiling_report, "p.xlsx", xlsx.read_bytes()).pk
    )
    from_parquet = population_file_profile(
        population_file_id=upload(users["tester"], profiling_report, "p.parquet", parquet).pk
    )

    assert from_xlsx.row_count == 5
    assert from_xlsx.profile_results.get(column_name="account_id").rule_failures == {"mandatory": 0, "primary_key": 1}
    assert from_parquet.row_count == 3
    parquet_key = from_parquet.profile_results.get(column_name="account_id")
    assert (parquet_key.dtype, parquet_key.rule_failures) == ("integer", {"mandatory": 0, "primary_key": 1})
    assert from_parquet.profile_results.get(column_name="balance").rule_failures == {"mandatory": 1}


def test_the_latest_upload_is_the_one_the_phase_uses(storage, users, profiling_report):
    assert population_file_latest(cycle_report=profiling_report) is None
    first = upload(users["tester"], profiling_report, "first.csv", CSV_TEXT.encode())
    population_file_profile(population_file_id=first.pk)
    second = upload(users["tester"], profiling_report, "second.csv", CSV_TEXT.encode())

    assert population_file_latest(cycle_report=profiling_report) == second


def test_a_csv_with_a_byte_order_mark_and_semicolons_profiles_with_clean_names(storage, users, profiling_report):
    content = "\ufeffAccount_ID;balance\n1;2.5\n2;3\n".encode()

    population_file = population_file_profile(
        population_file_id=upload(users["tester"], profiling_report, "excel.csv", content).pk
    )

    assert population_file.columns == ["Account_ID", "balance"]
    assert population_file.profile_results.get(column_name="balance").max_value == "3.0"


def test_a_sample_cut_inside_a_quoted_newline_falls_back_to_the_frame(tmp_path, monkeypatch):
    from cycles.profiling import engine

    monkeypatch.setattr(engine, "SAMPLE_BYTES", 16)  # ends inside the first quoted value
    path = tmp_path / "quoted.csv"
    path.write_text('id,note\n1,"two\nlines"\n2,plain\n3,"more\nlines"\n')

    profiles = by_name(profile_population(path, "csv"))

    assert profiles["id"].dtype == "integer"
    assert (profiles["id"].min_value, profiles["id"].max_value) == ("1", "3")
    assert profiles["note"].top_values[0] == {"value": "more\nlines", "count": 1}
