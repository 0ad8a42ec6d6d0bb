"""csvio: physical start lines survive multi-line quoted fields; field-count checks; ESCO label splitting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tiny_data import ESCO_TINY_EN

from knowledge.csvio import iter_dicts, iter_records, split_labels

MULTILINE = 'id,labels,note\n1,"a\nb\nc",x\n2,plain,y\n3,"one\n\ntwo",z\n4,last,w\n'


def test_iter_records_start_lines_with_multiline_fields(write_file: Callable[[str, str], Path]) -> None:
    path = write_file("m.csv", MULTILINE)
    records = list(iter_records(path))
    assert [line for line, _ in records] == [1, 2, 5, 6, 9]
    assert records[1][1] == ["1", "a\nb\nc", "x"]
    assert records[3][1] == ["3", "one\n\ntwo", "z"]
    assert records[4] == (9, ["4", "last", "w"])


def test_iter_records_skip_lines_counts_physical_lines(write_file: Callable[[str, str], Path]) -> None:
    path = write_file("s.csv", "meta 1\nmeta 2\n" + MULTILINE)
    lines = [line for line, _ in iter_records(path, skip_lines=2)]
    assert lines == [3, 4, 7, 8, 11]


def test_iter_records_crlf_and_bom(write_file: Callable[[str, str], Path]) -> None:
    path = write_file("c.csv", '\ufeffa,b\r\n1,"x\r\ny"\r\n2,z\r\n')
    records = list(iter_records(path))
    assert records[0] == (1, ["a", "b"])  # BOM stripped from the first header
    assert records[1] == (2, ["1", "x\r\ny"])
    assert records[2] == (4, ["2", "z"])


def test_iter_records_delimiter(write_file: Callable[[str, str], Path]) -> None:
    path = write_file("d.csv", "title;code\nBäcker/in;29202\n;\n")
    assert list(iter_records(path, delimiter=";")) == [
        (1, ["title", "code"]),
        (2, ["Bäcker/in", "29202"]),
        (3, ["", ""]),
    ]


def test_iter_dicts_field_count_mismatch(write_file: Callable[[str, str], Path]) -> None:
    path = write_file("f.csv", " a , b ,c\n1,2,3\n1,2\n1,2,3,4\n\n5,6,7\n")
    rows = list(iter_dicts(path))
    header = ["a", "b", "c"]  # header cells are stripped
    assert rows[0] == (2, {"a": "1", "b": "2", "c": "3"}, ["1", "2", "3"], header)
    assert rows[1] == (3, None, ["1", "2"], header)
    assert rows[2] == (4, None, ["1", "2", "3", "4"], header)
    assert rows[3] == (5, None, [], header)  # a blank line is a record with no fields
    assert rows[4][:2] == (6, {"a": "5", "b": "6", "c": "7"})


def test_iter_dicts_pad_short(write_file: Callable[[str, str], Path]) -> None:
    path = write_file("p.csv", "a,b,c\n1\n1,2\n\n1,2,3,4\n")
    rows = list(iter_dicts(path, pad_short=True))
    assert rows[0][1] == {"a": "1", "b": "", "c": ""}
    assert rows[0][2] == ["1", "", ""]
    assert rows[1][1] == {"a": "1", "b": "2", "c": ""}
    assert rows[2][1] is None  # an empty record is not padded into an all-empty row
    assert rows[3][1] is None  # too many fields is never fixed


def test_iter_dicts_empty_file(write_file: Callable[[str, str], Path]) -> None:
    assert list(iter_dicts(write_file("e.csv", ""))) == []
    assert list(iter_dicts(write_file("h.csv", "a,b\n"))) == []


def test_iter_dicts_on_esco_fixture_keeps_start_lines() -> None:
    rows = list(iter_dicts(ESCO_TINY_EN / "occupations_en.csv"))
    # nurse spans lines 2-5 (multi-line altLabels and inScheme), baker starts on line 6
    assert [line for line, *_ in rows] == [2, 6, 8, 12, 14]
    assert all(row is not None for _, row, _, _ in rows)


def test_iter_dicts_short_hierarchy_rows_need_padding() -> None:
    path = ESCO_TINY_EN / "skillsHierarchy_en.csv"
    assert any(row is None for _, row, _, _ in iter_dicts(path))
    padded = list(iter_dicts(path, pad_short=True))
    assert all(row is not None for _, row, _, _ in padded)
    assert padded[0][1]["Level 0 code"] == "S"
    assert padded[0][1]["Level 3 code"] == ""


def test_split_labels() -> None:
    assert split_labels(None) == []
    assert split_labels("") == []
    assert split_labels("nurse") == ["nurse"]
    assert split_labels("nurse\nregistered  nurse\n\nnurse\n") == ["nurse", "registered nurse"]
    assert split_labels("a\r\nb\rc") == ["a", "b", "c"]
    assert split_labels("  \n \t\n") == []
    assert split_labels(" x \n y ") == ["x", "y"]
