"""backend_common.export.csv_document: a small table written whole, cells as the streamed exports
write theirs."""

import csv
import io
import math

from backend_common.export import csv_document


def parsed(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def test_rows_end_in_crlf_and_quote_what_needs_it():
    data = csv_document([["a", "b"], ["x, y", 'say "hi"']])

    assert data == b'a,b\r\n"x, y","say ""hi"""\r\n'


def test_numbers_stay_numbers_and_nothing_is_an_empty_cell():
    assert parsed(csv_document([[1, 0.1, -2.5, None]])) == [["1", "0.1", "-2.5", ""]]


def test_nan_and_infinities_are_named_as_in_json_and_not_escaped():
    row = [math.nan, math.inf, -math.inf]

    assert parsed(csv_document([row])) == [["NaN", "Infinity", "-Infinity"]]


def test_text_a_spreadsheet_would_run_stays_text():
    row = ["=1+2", "+1", "-x", "@sum", "\tx", "plain"]

    assert parsed(csv_document([row])) == [["'=1+2", "'+1", "'-x", "'@sum", "'\tx", "plain"]]


def test_objects_and_arrays_become_json():
    assert parsed(csv_document([[{"a": [1, 2]}, [True, None]]])) == [['{"a":[1,2]}', "[true,null]"]]
