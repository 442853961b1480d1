"""The generator writes the utility's exact format, with every trap the pipeline must handle."""

import json
import sqlite3

import polars as pl

from energy_assets.devtools import smart_meter_generator as generator


def load(folder) -> pl.DataFrame:
    frames = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        assert list(doc) == ["columns", "data"]  # split orient, no index
        assert doc["columns"] == ["interval_start", "consumption_delta", "meterpoint_id"]
        frames.append(pl.DataFrame(doc["data"], schema=["interval_start", "kwh", "meterpoint_id"], orient="row").with_columns(file=pl.lit(path.stem), pos=pl.int_range(pl.len())))
    return pl.concat(frames)


def test_generator_is_deterministic_and_writes_the_source_format(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert generator.main(["--meterpoints", "30", "--days", "4", "--start", "2021-03-26", "--seed", "5", "--out", str(a)]) == 0
    generator.main(["--meterpoints", "30", "--days", "4", "--start", "2021-03-26", "--seed", "5", "--out", str(b)])
    names = sorted(p.name for p in (a / "readings").iterdir())
    assert len(names) == 30 and all(len(n) == len("0123456789.json") for n in names)
    assert all((a / "readings" / n).read_bytes() == (b / "readings" / n).read_bytes() for n in names)

    rows = load(a / "readings")
    assert (rows["file"] == rows["meterpoint_id"]).all()
    assert rows["interval_start"].str.contains(r"^\d{4}-\d\d-\d\d \d\d:(00|30):00$").all()
    assert not rows["interval_start"].str.starts_with("2021-03-28 01:").any()  # the spring hour does not exist
    half_hours = 48 * 3 + 46
    per_mp_day = rows.unique(["meterpoint_id", "interval_start"]).group_by("meterpoint_id").len()["len"]
    assert per_mp_day.to_list() == [half_hours] * 30  # every half-hour of every meterpoint, once
    # about 0.5 % of the 30 x 190 readings are repeated, each an exact copy of its reading
    duplicates = rows.height - 30 * half_hours
    assert 10 <= duplicates <= 50, duplicates
    assert rows.unique(["meterpoint_id", "interval_start", "kwh"]).height == 30 * half_hours
    # about 15 % zeros (a binomial share of 5,700 readings: 0.15 +- 6 standard deviations), no bad values at bad-rate 0
    assert 0.12 <= (rows["kwh"] == 0).mean() <= 0.18
    assert rows["kwh"].dtype == pl.Float64 and rows["kwh"].null_count() == 0 and rows["kwh"].min() >= 0
    assert not rows.sort("pos").group_by("file", maintain_order=True).agg(pl.col("interval_start").is_sorted()).to_series(1).all()  # shuffled

    con = sqlite3.connect(a / "case_study.db")
    cols = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in ("agreement", "product", "meterpoint")}
    assert cols == {
        "agreement": ["agreement_id", "agreement_valid_from", "agreement_valid_to", "product_id", "meterpoint_id", "account_id"],
        "product": ["display_name", "is_variable", "id", "product_id"],
        "meterpoint": ["region", "meterpoint_id"],
    }
    names_count = con.execute("SELECT count(*) - count(DISTINCT display_name) FROM product").fetchone()[0]
    assert names_count > 0  # display names are not unique
    # a zero-length agreement is only ever written on the switch day, next to the meterpoint's real agreement
    zero_length = con.execute(
        """SELECT z.meterpoint_id, z.agreement_valid_from, count(a.agreement_id) FROM agreement z
           LEFT JOIN agreement a ON a.meterpoint_id = z.meterpoint_id AND a.agreement_id <> z.agreement_id AND a.agreement_valid_to IS NULL
           WHERE z.agreement_valid_from = z.agreement_valid_to GROUP BY 1, 2"""
    ).fetchall()
    assert all(day == "2021-03-28" and others == 1 for _, day, others in zero_length), zero_length
    switches = con.execute("SELECT count(*) FROM agreement WHERE agreement_valid_from = '2021-03-28'").fetchone()[0]
    assert switches > 0  # product switch in the middle of the data
    known = {r[0] for r in con.execute("SELECT meterpoint_id FROM meterpoint")}
    assert len(known) < 30  # reading files of meterpoints the database does not know


def test_autumn_clock_change_repeats_the_hour_bst_first(tmp_path):
    generator.main(["--meterpoints", "3", "--days", "1", "--start", "2021-10-31", "--seed", "1", "--out", str(tmp_path)])
    rows = load(tmp_path / "readings")
    amb = rows.filter(pl.col("interval_start").is_in(["2021-10-31 01:00:00", "2021-10-31 01:30:00"]))
    assert amb.group_by("meterpoint_id", "interval_start").len()["len"].to_list() == [2] * 6
    assert rows.unique(["meterpoint_id", "interval_start"]).height + 6 <= rows.height
    # 50 half-hours a meterpoint (48 distinct local strings: 01:00 and 01:30 twice), plus the duplicated readings,
    # which are never in the ambiguous hour
    assert rows.unique(["meterpoint_id", "interval_start"]).group_by("meterpoint_id").len()["len"].to_list() == [48] * 3
    others = rows.filter(~pl.col("interval_start").is_in(["2021-10-31 01:00:00", "2021-10-31 01:30:00"]))
    assert rows.height - 3 * 50 == others.height - others.unique(["meterpoint_id", "interval_start"]).height
    # BST first: within each file the first 01:00 occurrence comes before the second (file order = pos)
    firsts = amb.sort("pos").group_by("meterpoint_id", "interval_start", maintain_order=True).agg(pl.col("pos"))
    assert all(len(p) == 2 and p[0] < p[1] for p in firsts["pos"].to_list())


def test_large_mix_has_every_agreement_shape(tmp_path):
    generator.write_database(tmp_path / "db.sqlite", generator.meterpoint_ids(400, 2), __import__("datetime").date(2021, 3, 1), 30, 2)
    con = sqlite3.connect(tmp_path / "db.sqlite")
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    # zero-length agreements are the k in [0.87, 0.91) branch: 4 % of 400 meterpoints = 16 expected (binomial sd 3.9)
    assert 5 <= q("SELECT count(*) FROM agreement WHERE agreement_valid_from = agreement_valid_to") <= 30
    assert q("SELECT count(*) FROM agreement WHERE agreement_valid_to = '2021-01-01' OR agreement_valid_from = '2021-01-01'") > 0
    assert q("SELECT count(DISTINCT region) FROM meterpoint") == 13
    overlapping = q(
        """SELECT count(*) FROM agreement a JOIN agreement b ON a.meterpoint_id = b.meterpoint_id AND a.agreement_id < b.agreement_id
           WHERE a.agreement_valid_from < coalesce(b.agreement_valid_to, '9999-12-31') AND b.agreement_valid_from < coalesce(a.agreement_valid_to, '9999-12-31')
             AND a.agreement_valid_from < coalesce(a.agreement_valid_to, '9999-12-31') AND b.agreement_valid_from < coalesce(b.agreement_valid_to, '9999-12-31')"""
    )
    assert overlapping > 0
    uncovered = q(
        """SELECT count(*) FROM meterpoint m WHERE NOT EXISTS (SELECT 1 FROM agreement a WHERE a.meterpoint_id = m.meterpoint_id
           AND a.agreement_valid_from <= '2021-03-01' AND coalesce(a.agreement_valid_to, '9999-12-31') > '2021-03-30')"""
    )
    assert uncovered > 0


def test_committed_sample_is_exactly_what_the_generator_writes(tmp_path):
    from energy_assets import settings

    generator.main(["--meterpoints", "100", "--days", "4", "--start", settings.SAMPLE_DAYS[0], "--seed", "7", "--bad-rate", "0.002", "--out", str(tmp_path)])
    committed = sorted(p.name for p in (settings.DATA_DIR / "readings").glob("*.json"))
    assert committed == sorted(p.name for p in (tmp_path / "readings").glob("*.json"))
    assert all((settings.DATA_DIR / "readings" / n).read_bytes() == (tmp_path / "readings" / n).read_bytes() for n in committed)
    assert (settings.DATA_DIR / "case_study.db").read_bytes() == (tmp_path / "case_study.db").read_bytes()


def test_bad_rate_spoils_that_share_of_rows_in_four_kinds(tmp_path):
    generator.main(["--meterpoints", "30", "--days", "4", "--start", "2021-03-26", "--seed", "5", "--bad-rate", "0.01", "--out", str(tmp_path)])
    data = [row for path in sorted((tmp_path / "readings").glob("*.json")) for row in json.loads(path.read_text())["data"]]
    kinds = {
        "negative": sum(isinstance(v, float) and v < 0 for _, v, _ in data),
        "non_numeric": sum(v == "n/a" for _, v, _ in data),
        "null": sum(v is None for _, v, _ in data),
        "hour_25": sum(ts[11:13] == "25" for ts, _, _ in data),
    }
    # 1 % of about 5,730 rows = 57 expected (binomial sd 7.5); each of the four kinds about a quarter of them
    assert 30 <= sum(kinds.values()) <= 85, kinds
    assert all(3 <= n <= 30 for n in kinds.values()), kinds
    # the same arguments without --bad-rate give the same rows with nothing spoiled
    clean = tmp_path / "clean"
    generator.main(["--meterpoints", "30", "--days", "4", "--start", "2021-03-26", "--seed", "5", "--out", str(clean)])
    clean_rows = [row for path in sorted((clean / "readings").glob("*.json")) for row in json.loads(path.read_text())["data"]]
    assert len(clean_rows) == len(data)
    assert sum(a != b for a, b in zip(clean_rows, data, strict=True)) == sum(kinds.values())
