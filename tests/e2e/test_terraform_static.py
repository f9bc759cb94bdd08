"""The Terraform code is formatted and every root configuration validates (no endpoint needed)."""

from __future__ import annotations

import pytest

from tests.helpers.terraform import Terraform

ROOTS = (
    "envs/local",
    "envs/aws",
    "examples/stream_table",
    "examples/stream_consumer",
    "examples/monitoring",
)


def test_terraform_code_is_formatted(terraform: Terraform) -> None:
    result = terraform.run(".", "fmt", "-check", "-recursive", "-diff", ok_codes=(0, 3))
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}"


@pytest.mark.parametrize("root", ROOTS)
def test_configuration_validates(terraform: Terraform, root: str) -> None:
    terraform.run(root, "init", "-backend=false", "-input=false")
    result = terraform.run(root, "validate", "-json", ok_codes=(0, 1))
    assert result.returncode == 0 and '"valid": true' in result.stdout, result.stdout
