"""Writing a new store into tenants.yaml as text: comments, order and ${VAR} references stay."""

from __future__ import annotations

import pytest
import yaml

from edge.admin.config_writer import ConfigUnwritable, with_branch

TEXT = """\
# the admin's file
tenants:
  shop1:
    erpnext:
      api_key: ${SHOP1_KEY}   # from the environment
    branches: # till branch_id -> where its sales land
      main:
        pos_profile: Shop One Main
        warehouse: Stores - S1
      east: {pos_profile: Shop One East, warehouse: Stores - S1}
    rate_limit: 10/second
  shop2:
    branches: {front: {pos_profile: Front, warehouse: W}}
  shop3:
    name: Three
"""


def test_the_branch_is_one_more_line_in_the_tenants_block() -> None:
    new = with_branch(TEXT, "shop1", "west", {"pos_profile": "Shop One West: the 'new' one", "warehouse": "W # 2"})
    assert new.replace('      "west": {"pos_profile": "Shop One West: the \'new\' one", "warehouse": "W # 2"}\n', "") == TEXT
    assert new.index('"west"') > new.index("east:") and new.index('"west"') < new.index("rate_limit")
    data = yaml.safe_load(new)
    assert data["tenants"]["shop1"]["branches"]["west"] == {"pos_profile": "Shop One West: the 'new' one",
                                                             "warehouse": "W # 2"}
    assert data["tenants"]["shop1"]["erpnext"]["api_key"] == "${SHOP1_KEY}"  # left for the loader to substitute


@pytest.mark.parametrize(("tenant", "branch", "why"), [
    ("shop1", "east", "exists"),
    ("shop2", "back", "one line"),
    ("shop3", "main", "no branches"),
    ("nobody", "main", "no branches"),
])
def test_what_cannot_be_written_is_refused_with_its_reason(tenant: str, branch: str, why: str) -> None:
    with pytest.raises(ConfigUnwritable, match=why):
        with_branch(TEXT, tenant, branch, {"pos_profile": "P", "warehouse": "W"})
