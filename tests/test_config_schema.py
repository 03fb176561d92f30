"""tenants.schema.json: generated from the models, committed, and true to the example."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import yaml

from edge.config_schema import REGENERATE, SCHEMA_FILE, schema, text
from tests.conftest import POS_EDGE

ROOT = Path(__file__).parents[1]


def validator() -> jsonschema.Draft202012Validator:
    committed = json.loads((ROOT / SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator.check_schema(committed)
    return jsonschema.Draft202012Validator(committed)


def example() -> dict:
    return yaml.safe_load((ROOT / "tenants.yaml").read_text())


def test_committed_schema_is_up_to_date() -> None:
    assert (ROOT / SCHEMA_FILE).read_text() == text(), f"{SCHEMA_FILE} is stale: run {REGENERATE}"


def test_cli_prints_the_schema() -> None:
    out = subprocess.run([POS_EDGE, "config", "schema"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == schema()


def test_example_names_the_schema_on_its_first_line() -> None:
    first = (ROOT / "tenants.yaml").read_text().splitlines()[0]
    assert first == f"# yaml-language-server: $schema=./{SCHEMA_FILE}"


def test_example_validates() -> None:
    assert list(validator().iter_errors(example())) == []


def test_a_misspelt_key_fails() -> None:
    for where in (lambda c: c["tenants"]["shop1"]["erpnext"], lambda c: c["defaults"]["erpnext"],
                  lambda c: c["gateway"]["jwt"], lambda c: c["tenants"]["shop2"], lambda c: c):
        config = example()
        where(config)["timout"] = 5
        assert list(validator().iter_errors(config)), where


def test_defaults_need_no_required_keys_but_tenants_do() -> None:
    config = example()
    config["defaults"] = {"erpnext": {"timeout": 5}, "branches": {"x": {"warehouse": "W"}}}
    assert list(validator().iter_errors(config)) == []
    del config["tenants"]["shop2"]["erpnext"]["url"]
    assert list(validator().iter_errors(config))


def test_secrets_are_strings_and_env_references_fit_anywhere() -> None:
    s = schema()
    assert s["$defs"]["JwtConfig"]["properties"]["secret"]["type"] == "string"
    config = example()
    config["tenants"]["shop1"]["erpnext"]["timeout"] = "${SHOP1_TIMEOUT:-10}"
    config["gateway"]["sync"]["in_process_workers"] = "${IN_PROCESS:-true}"
    assert list(validator().iter_errors(config)) == []
    config["tenants"]["shop1"]["erpnext"]["timeout"] = "ten"
    assert list(validator().iter_errors(config))


def test_tenant_keys_are_dns_labels() -> None:
    config = example()
    config["tenants"]["Shop_3"] = config["tenants"]["shop2"]
    assert list(validator().iter_errors(config))
