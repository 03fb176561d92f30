"""Where Frappe would find a `cmd` (edge.erpnext.form_dict), decoded as Werkzeug decodes it."""

from __future__ import annotations

import pytest

from edge.erpnext.form_dict import UnreadableBody, body_names, names_cmd, query_names


@pytest.mark.parametrize("query", [b"cmd=frappe.ping", b"c%6Dd=x", b"%63%6d%64=x", b"a=1&cmd=", b"x=1;cmd=y", b"CMD=x"])
def test_query_spellings_of_cmd(query: bytes) -> None:
    assert names_cmd(query_names(query))


@pytest.mark.parametrize("query", [b"", b"fields=%5B%22name%22%5D", b"filters=cmd", b"command=x", b"c+md=x", b"cm=d"])
def test_queries_without_cmd(query: bytes) -> None:
    assert not names_cmd(query_names(query))


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        (b"application/json", b'{"cmd": "frappe.ping"}'),
        (b"application/json", b'{"\\u0063md": 1}'),
        (b"APPLICATION/JSON; charset=utf-8", b'{"cmd": 1}'),
        (b"application/vnd.api+json", b'{"cmd": 1}'),
        (b"application/x-www-form-urlencoded", b"a=1&c%6dd=2"),
        (b"multipart/form-data; boundary=XX", b'--XX\r\nContent-Disposition: form-data; name*=UTF-8\'\'cmd\r\n\r\nv\r\n--XX--\r\n'),
        (b"multipart/form-data; boundary=XX",
         b'--XX\r\nContent-Disposition: form-data; name="cmd"; filename="a"\r\n\r\nv\r\n--XX--\r\n'),
    ],
)
def test_body_spellings_of_cmd(ctype: bytes, body: bytes) -> None:
    assert names_cmd(body_names(ctype, body))


@pytest.mark.parametrize(
    ("ctype", "body"),
    [(b"text/plain", b"cmd=1"), (None, b"cmd=1"), (b"application/json", b"[1, 2]"),
     (b"application/json", b'{"data": {"cmd": 1}}')],
)
def test_bodies_frappe_reads_no_cmd_from(ctype: bytes | None, body: bytes) -> None:
    assert not names_cmd(body_names(ctype, body))


@pytest.mark.parametrize("body", [b"{bad", b'{"cmd": "frappe.client.get_list", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_json_that_cannot_be_checked_is_unreadable(body: bytes) -> None:
    # Another Python (Frappe's) may parse what this one gives up on: never forward it unchecked.
    with pytest.raises(UnreadableBody):
        body_names(b"application/json", body)


def test_a_multipart_frappe_refuses_is_unreadable() -> None:
    parts = b"".join(b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(1001))
    with pytest.raises(UnreadableBody):
        body_names(b"multipart/form-data; boundary=B", parts + b"--B--\r\n")
