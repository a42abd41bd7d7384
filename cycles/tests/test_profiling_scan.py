"""The one-pass scan: chunks of a few bytes and tallies of a few values must give the same profile and failures."""
import random

import polars as pl
import pytest

from cycles.profiling import ColumnExpectation, profile_population, scan, sources
from cycles.profiling.rules import RuleOutcome, RuleSpec, profile_with_rules

from cycles.tests.test_profiling_rules_engine import SPECS, _population, _row_by_row

EXPECT = {
    "amount": ColumnExpectation("decimal"),
    "key": ColumnExpectation("string", mandatory=True, primary_key=True),
    "opened": ColumnExpectation("date"),
}


def _small_pieces(monkeypatch, chunk_bytes=97, counted_max=7):
    monkeypatch.setattr(sources, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(sources, "CHUNK_ROWS", 13)
    monkeypatch.setattr(scan, "COUNTED_MAX", counted_max)
    monkeypatch.setattr(scan, "MERGE_EVERY", 3)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_small_chunks_and_hash_tallies_give_the_same_counts(tmp_path, monkeypatch, seed):
    frame = _population(seed, rows=300)
    path = tmp_path / "population.csv"
    frame.write_csv(path)
    whole_profiles, whole_outcomes = profile_with_rules(path, "csv", EXPECT, SPECS)

    _small_pieces(monkeypatch)
    profiles, outcomes = profile_with_rules(path, "csv", EXPECT, SPECS)

    assert outcomes == whole_outcomes == _row_by_row(pl.read_csv(path, infer_schema=False), SPECS)
    wide = 0
    for piecewise, whole in zip(profiles, whole_profiles, strict=True):
        if whole.distinct_count > scan.COUNTED_MAX and piecewise.name != "key":
            # Past the exact tally: distinct values estimated (HyperLogLog), and no top values.
            wide += 1
            assert abs(piecewise.distinct_count - whole.distinct_count) <= max(1, whole.distinct_count // 50)
            assert piecewise.top_values == []
            piecewise.distinct_count, piecewise.top_values = whole.distinct_count, whole.top_values
        elif piecewise.name == "key":
            # A primary key's distinct values are counted exactly, whatever the tally.
            assert piecewise.top_values == [] or whole.distinct_count <= scan.COUNTED_MAX
            piecewise.top_values = whole.top_values
        assert piecewise == whole
    assert wide >= 2


def test_a_key_with_repeats_past_the_tally_is_counted_exactly(tmp_path, monkeypatch):
    path = tmp_path / "keys.csv"
    keys = [f"L{i:05d}" for i in range(200)] + ["L00007", "L00007", "L00150", "", " L00150 "]
    random.Random(3).shuffle(keys)
    path.write_text("loan\n" + "\n".join(keys) + "\n")
    _small_pieces(monkeypatch, chunk_bytes=64, counted_max=10)
    unique = RuleSpec(id=1, kind="unique", column="loan")

    profiles, outcomes = profile_with_rules(path, "csv", {"loan": ColumnExpectation("string", True, True)}, [unique])

    (loan,) = profiles
    # Three rows repeat an earlier key (two more L00007, one more L00150; " L00150 " is another value).
    assert loan.rule_failures == {"mandatory": 1, "primary_key": 3}
    assert (loan.null_count, loan.distinct_count) == (1, 201)
    # The uniqueness rule trims: " L00150 " repeats L00150, so 3 + 3 rows share a key.
    expected_rows = sorted(n for n, k in enumerate(keys, start=1) if k.strip() in ("L00007", "L00150"))
    assert outcomes == {1: RuleOutcome(failing=6, examples=expected_rows[:5])}


def test_a_key_past_the_tally_without_repeats_needs_no_second_pass(tmp_path, monkeypatch):
    path = tmp_path / "keys.csv"
    path.write_text("loan\n" + "\n".join(f"L{i}" for i in range(100)) + "\n")
    _small_pieces(monkeypatch, chunk_bytes=64, counted_max=10)
    reads = []
    original = sources.csv_source

    def counting_source(source_path):
        source = original(source_path)
        chunks = source.chunks

        def counted():
            reads.append(1)
            return chunks()

        source.chunks = counted
        return source

    monkeypatch.setattr(sources, "csv_source", counting_source)

    (loan,) = profile_population(path, "csv", {"loan": ColumnExpectation("string", True, True)})

    assert (loan.distinct_count, loan.rule_failures["primary_key"]) == (100, 0)
    assert len(reads) == 1


def test_chunks_are_cut_only_between_records(tmp_path, monkeypatch):
    path = tmp_path / "quoted.csv"
    rows = [f'{i},"line {i}\nstill {i}, and ""quoted""",x' for i in range(40)]
    path.write_text('id,"note\nwith a newline",flag\n' + "\n".join(rows) + "\n")
    _small_pieces(monkeypatch, chunk_bytes=29)

    profiles = {p.name: p for p in profile_population(path, "csv")}

    assert profiles["id"].row_count == 40
    assert (profiles["id"].min_value, profiles["id"].max_value) == ("0", "39")
    assert profiles["flag"].top_values == [{"value": "x", "count": 40}]
    assert profiles["note\nwith a newline"].min_value == 'line 0\nstill 0, and "quoted"'


def test_rules_over_a_parquet_file_in_slices(tmp_path, monkeypatch):
    path = tmp_path / "population.parquet"
    frame = _population(21, rows=120)
    frame.write_parquet(path)
    whole = profile_with_rules(path, "parquet", EXPECT, SPECS)

    _small_pieces(monkeypatch, counted_max=1000)

    assert profile_with_rules(path, "parquet", EXPECT, SPECS) == whole
    assert whole[1] == _row_by_row(frame, SPECS)


@pytest.mark.parametrize("seed", range(6))
def test_pieces_read_by_position_are_whole_records_and_cover_the_file(tmp_path, seed):
    """Quoted newlines, doubled quotes, records longer than a piece, no newline at the end: the pieces
    are the file after its header, in order, each parsing on its own into whole records."""
    rng = random.Random(seed)
    cells = ["a", "", "plain text", '"with\nnewline"', '"said ""hi"""', '"' + "long\n" * 30 + '"', "12,5".join('""')]
    header = '"h\n1",h2,h3\n'
    records = [",".join(rng.choice(cells) for _ in range(3)) for _ in range(rng.randint(0, 60))]
    body = "\n".join(records) + rng.choice(["\n", ""])
    path = tmp_path / "pieces.csv"
    path.write_bytes((header + body).encode())

    for chunk_bytes in (1, 7, 40, 1 << 20):
        pieces = list(sources._csv_records(path, chunk_bytes))
        assert b"".join(pieces) == body.encode()
        parsed = [pl.read_csv(p, has_header=False, infer_schema=False, new_columns=["a", "b", "c"])
                  for p in pieces]
        whole = pl.read_csv(path, infer_schema=False, new_columns=["a", "b", "c"]) if records else None
        if whole is not None:
            assert pl.concat(parsed).equals(whole)


@pytest.mark.parametrize("distinct", [40, 3_000, 200_000])
def test_distinct_values_past_the_tally_are_estimated_within_two_percent(monkeypatch, distinct):
    """The sketch's registers are kept across chunks (every value seen once or many times counts once)."""
    monkeypatch.setattr(sources, "CHUNK_ROWS", 7_919)
    monkeypatch.setattr(scan, "COUNTED_MAX", 10)
    rng = random.Random(distinct)
    values = [f"ACC{rng.getrandbits(48):014d}" for _ in range(distinct)]
    rows = values + [rng.choice(values) for _ in range(distinct // 2)]
    rng.shuffle(rows)

    (profile,) = scan.run(sources.frame_source(pl.DataFrame({"account": rows})), {}, [])[0]

    assert abs(profile.distinct_count - len(set(values))) <= max(1, len(set(values)) // 50)
    assert profile.row_count == len(rows) and profile.top_values == []
