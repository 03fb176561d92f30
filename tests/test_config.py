"""tenants.yaml validation: paths in errors, ${ENV} substitution, defaults, no secrets echoed."""

from __future__ import annotations

import textwrap

import pytest

from edge.config import ConfigError, parse

GOOD = textwrap.dedent(
    """
    gateway:
      base_domains: [TillKing.Local.]
      jwt: {secret: "${JWT_SECRET}"}
    defaults:
      rate_limit: 60/minute
      erpnext: {timeout: 7}
    tenants:
      shop1:
        name: Shop One
        erpnext: {url: "https://erp.shop1.example", api_key: "${K1}", api_secret: "${S1}"}
        rate_limit: 10/second
      shop2:
        name: Shop Two
        erpnext: {url: "http://127.0.0.1:8001", api_key: k, api_secret: "${S2:-fallback-secret}", timeout: 3}
    """
)
ENV = {"JWT_SECRET": "j" * 40, "K1": "key-1", "S1": "top-secret-value"}


def errors_of(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "t.yaml", env=ENV if env is None else env)
    return dict(info.value.errors)


def test_good_config_loads_with_defaults_merged() -> None:
    cfg = parse(GOOD, env=ENV)
    assert cfg.gateway.base_domains == ["tillking.local"]
    s1, s2 = cfg.tenants["shop1"], cfg.tenants["shop2"]
    assert s1.erpnext.api_secret.get_secret_value() == "top-secret-value"
    assert s1.erpnext.timeout == 7 and s2.erpnext.timeout == 3
    assert s1.rate_limit == "10/second" and s2.rate_limit == "60/minute"
    assert s2.erpnext.api_secret.get_secret_value() == "fallback-secret"
    assert cfg.defaulted_variables == ("S2",)
    assert cfg.gateway.store == "sqlite:///./pos-edge.db" and cfg.gateway.rate_limit_storage == "memory://"
    assert cfg.gateway.max_body_bytes == 1024 * 1024
    assert s1.status == "active" and s1.registration.enrollment_key is None
    assert s1.erpnext.origin == "https://erp.shop1.example"


def test_missing_variable_is_named_with_its_path() -> None:
    errs = errors_of(GOOD, env={"JWT_SECRET": "j" * 40, "K1": "k"})
    assert errs["tenants.shop1.erpnext.api_secret"] == "environment variable S1 is not set"


def test_errors_carry_paths_and_never_secret_values() -> None:
    bad = GOOD.replace('"https://erp.shop1.example"', '"not a url"').replace("10/second", "lots")
    bad = bad.replace("name: Shop Two\n", "name: Shop Two\n    colour: blue\n")
    with pytest.raises(ConfigError) as info:
        parse(bad, "t.yaml", env=ENV)
    errs = dict(info.value.errors)
    assert "tenants.shop1.erpnext.url" in errs
    assert "tenants.shop1.rate_limit" in errs and "'lots'" in errs["tenants.shop1.rate_limit"]
    assert "tenants.shop2.colour" in errs
    assert "top-secret-value" not in str(info.value)


def test_short_jwt_secret_and_bad_urls() -> None:
    errs = errors_of(GOOD, env={**ENV, "JWT_SECRET": "short"})
    assert "at least 32 bytes" in errs["gateway.jwt.secret"]
    errs = errors_of(GOOD.replace("jwt: {", "store: postgres://x\n  jwt: {"))
    assert "gateway.store" in errs
    errs = errors_of(GOOD.replace("https://erp.shop1.example", "https://erp.shop1.example/app"))
    assert "no path" in errs["tenants.shop1.erpnext.url"]


def test_hs512_needs_a_64_byte_secret() -> None:
    errs = errors_of(GOOD.replace('jwt: {secret: "${JWT_SECRET}"}', 'jwt: {secret: "${JWT_SECRET}", algorithm: HS512}'))
    assert "64 bytes" in errs["gateway.jwt.secret"]


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse("gateway: [\n  oops", "t.yaml", env=ENV)
    (error,) = info.value.errors
    assert "YAML syntax error" in error[1] and error.line == 2
    assert str(info.value).splitlines()[1].startswith("t.yaml:2:")


def test_tenant_keys_and_host_conflicts() -> None:
    text = GOOD.replace("  shop2:\n", "  Shop_2:\n")
    assert "tenants.Shop_2" in errors_of(text)
    text = GOOD.replace("name: Shop Two\n", "name: Shop Two\n    hosts: [shop1.tillking.local]\n")
    assert "already served by tenant shop1" in errors_of(text)["tenants.shop2.hosts"]


def test_proxy_rules_are_validated() -> None:
    text = GOOD.replace("rate_limit: 10/second\n", "rate_limit: 10/second\n    proxy: {allow: [FETCH Item, POST]}\n")
    assert "a rule is" in errors_of(text)["tenants.shop1.proxy.allow"]


def test_erpnext_url_without_userinfo_and_site_names_are_hosts() -> None:
    errs = errors_of(GOOD.replace("https://erp.shop1.example", "https://u:p@erp.shop1.example"))
    assert "user:password" in errs["tenants.shop1.erpnext.url"]
    errs = errors_of(GOOD.replace('api_key: "${K1}",', 'api_key: "${K1}", site_name: "bad site",'))
    assert "not a site" in errs["tenants.shop1.erpnext.site_name"]


def test_defaulted_secrets_are_reported_by_path() -> None:
    cfg = parse(GOOD, env=ENV)
    assert cfg.defaulted_secrets == ("tenants.shop2.erpnext.api_secret",)


def test_dollar_escape_keeps_a_literal_dollar() -> None:
    cfg = parse(GOOD.replace("api_key: k,", "api_key: 'pa$$word',"), env=ENV)
    assert cfg.tenants["shop2"].erpnext.api_key.get_secret_value() == "pa$word"


def test_example_tenants_yaml_is_valid() -> None:
    from pathlib import Path

    cfg = parse(Path(__file__).parents[1].joinpath("tenants.yaml").read_text(), env={})
    assert set(cfg.tenants) == {"shop1", "shop2"}


def test_a_missing_secret_variable_is_reported_once() -> None:
    from edge.config import ConfigError, parse

    text = "gateway:\n  jwt:\n    secret: ${POS_EDGE_TEST_NOT_SET}\ntenants: {}\n"
    with pytest.raises(ConfigError) as err:
        parse(text, env={})
    assert err.value.errors == [("gateway.jwt.secret", "environment variable POS_EDGE_TEST_NOT_SET is not set")]


def test_webhook_secret_is_long_enough_and_public_url_has_no_query() -> None:
    text = GOOD.replace('api_secret: "${S1}"}', 'api_secret: "${S1}", webhook_secret: "${W1}"}').replace(
        "base_domains:", "public_url: https://pos.example.com/edge?x=1\n  base_domains:")
    errs = errors_of(text, env={**ENV, "W1": "too-short"})
    assert "at least 16 characters" in errs["tenants.shop1.erpnext.webhook_secret"]
    assert "too-short" not in str(errs)
    assert "no query" in errs["gateway.public_url"]
    cfg = parse(text.replace("?x=1", ""), env={**ENV, "W1": "w" * 16})
    assert str(cfg.gateway.public_url) == "https://pos.example.com/edge"
    assert cfg.tenants["shop1"].erpnext.webhook_secret is not None
    assert cfg.tenants["shop2"].erpnext.webhook_secret is None  # no webhooks: polling only


def test_an_admin_key_in_clear_is_refused() -> None:
    text = GOOD.replace("tenants:\n  shop1:\n", "tenants:\n  shop1:\n    admins: [{name: a, role: company_admin, "
                        "key: plain-text-key-0123456789abcdef}]\n", 1)
    errs = errors_of(text)
    assert "never stands in the file in clear" in errs["tenants.shop1.admins.0.key"]
    assert "plain-text-key" not in str(errs)
    ok = text.replace("key: plain-text-key-0123456789abcdef", "key: '${ADMIN_KEY}'")
    cfg = parse(ok, env={**ENV, "ADMIN_KEY": "from-the-environment-0123456789"})
    assert cfg.tenants["shop1"].admins[0].key is not None
