"""The resumable journal every long stage uses: durable records, one torn-tail check at open."""

import json

from stylegan import fileio


def key(entry):
    return entry["id"]


def test_records_survive_reopening_and_later_entries_replace_earlier(tmp_path):
    path = tmp_path / "sub" / "j.jsonl"
    with fileio.Journal(path, key) as journal:
        assert journal.done("a") is None
        journal.record({"id": "a", "v": 1})
        journal.record({"id": "b", "v": 2})
        journal.record({"id": "a", "v": 3})
        assert journal.done("a") == {"id": "a", "v": 3}
    reopened = fileio.Journal(path, key)
    assert reopened.done("a") == {"id": "a", "v": 3} and reopened.done("b") == {"id": "b", "v": 2}
    assert len(path.read_text().splitlines()) == 3  # append-only: nothing rewritten


def test_a_torn_tail_is_cut_once_at_open_and_appending_goes_on(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "v"')  # a writer killed mid-record
    with fileio.Journal(path, key) as journal:
        assert set(journal.entries) == {"a", "b"}
        assert path.read_bytes() == b'{"id": "a"}\n{"id": "b"}\n'
        journal.record({"id": "c"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


def test_a_torn_tail_longer_than_the_read_block_is_cut(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"id": "a"}\n' + b'{"id": "b", "pad": "' + b"x" * 200_000)  # > one 64 KiB block
    assert set(fileio.Journal(path, key).entries) == {"a"}
    assert path.read_bytes() == b'{"id": "a"}\n'
    only_torn = tmp_path / "k.jsonl"
    only_torn.write_bytes(b'{"id": "a"' + b"x" * 100_000)  # not one complete line
    assert fileio.Journal(only_torn, key).entries == {} and only_torn.read_bytes() == b""


def test_finish_removes_the_journal(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = fileio.Journal(path, key)
    journal.record({"id": "a"})
    journal.finish()
    assert not path.exists()
    assert fileio.Journal(path, key).entries == {}  # a forced rerun starts from nothing
