"""tenants.yaml errors a shop admin can act on: the file's line and column, the key as
written, a "did you mean", duplicate keys refused, no pydantic wording."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from edge.config import ConfigError, parse
from tests.conftest import POS_EDGE

SECRET = "j" * 40
GOOD = textwrap.dedent(
    f"""\
    gateway:
      base_domains: [tillking.local]
      jwt:
        secret: {SECRET}
    defaults:
      rate_limit: 60/minute
      erpnext:
        timeout: 7
    tenants:
      shop1:
        name: Shop One
        erpnext:
          url: https://erp.shop1.example
          api_key: key-1
          api_secret: secret-1
        rate_limit: 10/second
      shop2:
        name: Shop Two
        erpnext: {{url: "http://127.0.0.1:8001", api_key: k, api_secret: s}}
    """
)


def issues(text: str) -> dict[str, tuple[str, int | None, int | None]]:
    """path -> (message, line, column) of every error of `text`."""
    with pytest.raises(ConfigError) as info:
        parse(text, "tenants.yaml", env={})
    return {e[0]: (e[1], e.line, e.column) for e in info.value.errors}


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """`pos-edge check` on `text` written to a real file, as an admin runs it."""
    path = tmp_path / "tenants.yaml"
    path.write_text(text)
    return subprocess.run([POS_EDGE, "check", str(path)], capture_output=True, text=True, timeout=30, cwd=tmp_path)


def test_the_base_config_is_valid() -> None:
    assert set(parse(GOOD, env={}).tenants) == {"shop1", "shop2"}


def test_a_duplicate_key_is_refused_naming_both_lines(tmp_path: Path) -> None:
    text = GOOD.replace("    rate_limit: 10/second\n", "    rate_limit: 10/second\n    status: active\n"
                                                           "    rate_limit: 20/second\n")
    assert issues(text)["tenants.shop1.rate_limit"] == ("duplicate key (lines 16 and 18)", 18, 5)
    out = check(tmp_path, text)
    assert out.returncode == 1
    assert "tenants.yaml:18:5: tenants.shop1.rate_limit: duplicate key (lines 16 and 18)" in out.stderr


def test_an_unknown_key_has_its_line_column_and_a_suggestion(tmp_path: Path) -> None:
    text = GOOD.replace("      api_secret: secret-1\n", "      api_secret: secret-1\n      timout: 5\n")
    assert issues(text) == {
        "tenants.shop1.erpnext.timout": ("unknown key; did you mean 'timeout'?", 16, 7)}
    out = check(tmp_path, text)
    assert out.returncode == 1
    assert f"{tmp_path / 'tenants.yaml'}:16:7: tenants.shop1.erpnext.timout: unknown key; did you mean 'timeout'?" \
        in out.stderr.splitlines()


def test_enrolment_key_suggests_enrollment_key() -> None:
    text = GOOD.replace("    rate_limit: 10/second\n", "    rate_limit: 10/second\n    registration:\n"
                                                           "      enrolment_key: abc\n")
    message, line, column = issues(text)["tenants.shop1.registration.enrolment_key"]
    assert message == "unknown key; did you mean 'enrollment_key'?" and (line, column) == (18, 7)


def test_a_key_nothing_is_close_to_has_no_suggestion() -> None:
    text = GOOD.replace("    rate_limit: 10/second\n", "    rate_limit: 10/second\n    colour: blue\n")
    assert issues(text)["tenants.shop1.colour"][0] == "unknown key"


def test_a_bad_value_points_at_the_value() -> None:
    text = GOOD.replace("    rate_limit: 10/second\n", "    rate_limit: lots\n")
    message, line, column = issues(text)["tenants.shop1.rate_limit"]
    assert "'lots' is not a rate" in message and (line, column) == (16, 17)
    # in a flow mapping too
    text = GOOD.replace('"http://127.0.0.1:8001"', '"ftp://erp"')
    assert issues(text)["tenants.shop2.erpnext.url"][1:] == (19, 20)


def test_a_missing_key_points_at_the_mapping_that_lacks_it() -> None:
    text = GOOD.replace("      api_key: key-1\n", "")
    assert issues(text)["tenants.shop1.erpnext.api_key"] == ("Field required", 12, 5)


def test_a_typo_in_defaults_is_reported_once_where_it_is_written() -> None:
    text = GOOD.replace("    timeout: 7\n", "    timout: 7\n")
    assert issues(text) == {"defaults.erpnext.timout": ("unknown key; did you mean 'timeout'?", 8, 5)}


def test_a_bad_default_value_every_tenant_inherits_is_reported_once() -> None:
    text = GOOD.replace("  rate_limit: 60/minute\n", "  rate_limit: sixty\n")
    assert list(issues(text)) == ["defaults.rate_limit"]
    # ... and also when every tenant overrides it, since it is still wrong in the file
    text = text.replace("    name: Shop Two\n", "    name: Shop Two\n    rate_limit: 1/second\n")
    assert list(issues(text)) == ["defaults.rate_limit"]


def test_a_check_failing_on_a_default_is_reported_at_the_default() -> None:
    # a default timeout longer than the default commit_grace: at defaults.erpnext.timeout, once
    text = GOOD.replace("    timeout: 7\n", "    timeout: 200\n")
    message, line, _ = issues(text)["defaults.erpnext.timeout"]
    assert "commit_grace (150 s) must be longer than timeout (200 s)" in message and line == 8
    assert len(issues(text)) == 1


def test_a_tenants_own_commit_grace_is_reported_at_the_tenant() -> None:
    text = GOOD.replace("api_secret: s}", "api_secret: s, commit_grace: 5}")
    message, line, column = issues(text)["tenants.shop2.erpnext.commit_grace"]
    assert message.startswith("commit_grace (5 s) must be longer than timeout (7 s)")
    assert (line, column) == (19, text.splitlines()[18].index("5}") + 1)


def test_a_tenants_own_typo_stays_at_the_tenant() -> None:
    text = GOOD.replace("    timeout: 7\n", "    timout: 7\n").replace("    name: Shop Two\n",
                                                                         "    name: Shop Two\n    nmae: x\n")
    assert set(issues(text)) == {"defaults.erpnext.timout", "tenants.shop2.nmae"}


def test_a_short_jwt_secret_is_reported_at_the_secret() -> None:
    text = GOOD.replace(SECRET, "short")
    assert issues(text) == {"gateway.jwt.secret": ("an HS256 jwt secret must be at least 32 bytes long", 4, 13)}
    text = GOOD.replace(f"    secret: {SECRET}\n", f"    secret: {SECRET}\n    verification_keys:\n"
                                                   "      - {kid: old, secret: tiny}\n      - {kid: older, secret: " +
                        SECRET + "}\n")
    errs = issues(text)
    assert errs["gateway.jwt.verification_keys.0.secret"][0] == "an HS256 jwt secret must be at least 32 bytes long"
    assert errs["gateway.jwt.verification_keys.0.secret"][1:] == (6, 28)


def test_a_repeated_kid_is_reported_at_the_kid() -> None:
    text = GOOD.replace(f"    secret: {SECRET}\n", f"    secret: {SECRET}\n    verification_keys:\n"
                                                   f"      - {{kid: current, secret: {SECRET}}}\n")
    message, line, _ = issues(text)["gateway.jwt.verification_keys.0.kid"]
    assert "kid 'current' is already used" in message and line == 6


def test_pos_mapping_without_company_is_reported_at_company() -> None:
    text = GOOD.replace("    rate_limit: 10/second\n", "    rate_limit: 10/second\n    payment_methods: {cash: Cash}\n")
    message, line, _ = issues(text)["tenants.shop1.company"]
    assert message == "company is required when branches or payment_methods are set" and line == 10


def test_an_unknown_section_suggests_the_known_one() -> None:
    text = GOOD + "tenant:\n  x: 1\n"
    message, line, column = issues(text)["tenant"]
    assert message.startswith("unknown section") and message.endswith("did you mean 'tenants'?")
    assert (line, column) == (20, 1)


def test_many_errors_read_as_an_admin_would_write_them(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        gateway:
          base_domains: ["not a host"]
          store: postgres://x
          rate_limit_storage: memcached://x
          jwt: {secret: short, algorithm: HS512, ttl: -1}
          metrics: {listen: nowhere}
          trusted_proxies: [not-a-cidr]
        defaults:
          erpnext: {timout: 3, time_zone: Mars/Olympus}
        tenants:
          shop1:
            name: S
            status: paused
            hosts: ["bad host"]
            erpnext: {url: "https://erp.example/app", api_key: k, api_secret: hunter2-secret, site_name: "a b"}
            proxy: {allow: [FETCH Item]}
            rate_limit: lots
            reference_field: Bad Field
            invoice_doctype: Journal Entry
            branches: {main: {pos_profile: P}}
          shop2:
            name: T
            erpnext: {url: "http://erp/x", api_key: k, api_secret: s}
        """
    )
    out = check(tmp_path, text)
    assert out.returncode == 1
    err = out.stderr
    lines = err.splitlines()
    assert lines[0].endswith("error(s)")
    assert "Value error" not in err and "Assertion failed" not in err
    assert "hunter2-secret" not in err
    # every error names the file, line and column
    assert all(line.startswith(f"{tmp_path / 'tenants.yaml'}:") and line.split(":")[1].isdigit()
               for line in lines[1:]), err
    for path in ["gateway.base_domains", "gateway.store", "gateway.rate_limit_storage", "gateway.jwt.ttl",
                 "gateway.metrics.listen", "defaults.erpnext.timout", "defaults.erpnext.time_zone",
                 "tenants.shop1.status", "tenants.shop1.hosts", "tenants.shop1.erpnext.url",
                 "tenants.shop1.erpnext.site_name", "tenants.shop1.proxy.allow", "tenants.shop1.rate_limit",
                 "tenants.shop1.reference_field", "tenants.shop1.invoice_doctype",
                 "tenants.shop1.branches.main.warehouse", "tenants.shop2.erpnext.url"]:
        assert f": {path}: " in err, (path, err)
    # the defaults' mistakes once each, not once per tenant
    assert err.count("defaults.erpnext.timout") == 1 and err.count("defaults.erpnext.time_zone") == 1
