"""Package a stage for Terraform: `chalice package` plus the project's own *.tf.json files beside it.

    python -m scripts.deploy.terraform.package --stage dev [--out build/terraform-dev] [--checkov]

Terraform merges every *.tf.json in the folder, so the table, identity, usage plans, registry,
secret and monitoring files (one module each beside this one, gathered by files.py) sit beside
chalice.tf.json, and chalice_override.tf.json adjusts Chalice's own blocks. A rerun replaces only the files it
wrote before, so terraform.tfvars.json, .terraform/ or a local state in the folder survive.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.tiers import TIERS
from scripts import provision
from scripts.command_output import CommandOutput
from scripts.deploy.terraform.blocks import TerraformStage
from scripts.deploy.terraform.files import resource_addresses, terraform_files
from scripts.stage_config import (
    LOCKED_PACKAGING,
    PROJECT_DIR,
    PROTECTED_STAGES,
    StageConfig,
    StageConfigError,
    read_stage_config,
)

OUTPUT = CommandOutput("package-terraform")

DEFAULT_REGION = "us-east-1"
# The list of files the last run wrote, so a rerun removes exactly those.
MANIFEST = ".package-terraform.json"
CHECKOV_VENV = PROJECT_DIR / ".venv-checkov"
TFVARS_EXAMPLE = {"tenants": {"acme": {"tier": "standard"}, "globex": {"tier": "basic", "status": "suspended"}}}


class PackagingError(Exception):
    """Packaging cannot go on; the message says why."""


def packaging_region() -> str:
    """The region chalice packages for: AWS_DEFAULT_REGION, else AWS_REGION, else us-east-1."""
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION


def terraform_stage(config: StageConfig, region: str) -> TerraformStage:
    """The stage's settings as the rendered files need them, with scripts/provision.py's naming."""
    if config.environment.get("RATE_LIMITER") != "usage-plan":
        raise PackagingError(f"stage {config.stage!r} does not use usage plans (RATE_LIMITER); package dev or prod")
    deployment = config.deployment(region)
    tags = config.settings.get("tags") or {"project": config.app_name, "stage": config.stage}
    return TerraformStage(
        deployment=deployment,
        resource_server_id=config.resource_server_id,
        resource_prefix=config.resource_prefix,
        tags=dict(tags),
        usage_plan_names={
            name: provision.usage_plan_name(config.resource_prefix, tier) for name, tier in TIERS.items()
        },
        app_client_settings=provision.client_settings([], config.access_token_minutes),
        protected=config.stage in PROTECTED_STAGES,
    )


def chalice_command() -> list[str]:
    """The chalice CLI of this interpreter's environment (or the one on PATH)."""
    beside = Path(sys.executable).parent / "chalice"
    found = str(beside) if beside.exists() else shutil.which("chalice")
    if not found:
        raise PackagingError("the chalice CLI is not installed; run `make` first")
    return [found]


def run_chalice_package(stage: str, region: str, into: Path) -> dict[str, Any]:
    """Run `chalice package --pkg-format terraform` into a fresh folder and return chalice.tf.json."""
    command = [*chalice_command(), "package", "--stage", stage, "--pkg-format", "terraform", str(into)]
    OUTPUT.progress(f"chalice package --stage {stage} --pkg-format terraform (region {region})")
    environment = {**os.environ, "AWS_DEFAULT_REGION": region, **LOCKED_PACKAGING}
    result = subprocess.run(command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackagingError(f"chalice package failed ({result.returncode}):\n{result.stderr or result.stdout}")
    return json.loads((into / "chalice.tf.json").read_text())


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write document as indented JSON (one property a line, so checkov's skip comments map to resources)."""
    path.write_text(json.dumps(document, indent=2) + "\n")


def previous_files(out: Path) -> list[str]:
    """The files the previous run wrote into out, from its manifest."""
    manifest = out / MANIFEST
    if not manifest.exists():
        return []
    return list(json.loads(manifest.read_text()).get("files", []))


def replace_output(staging: Path, out: Path) -> list[str]:
    """Move staging's files into out, first removing what the previous run wrote; returns the file names."""
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(path.name for path in staging.iterdir())
    for name in set(previous_files(out)) | set(names):
        (out / name).unlink(missing_ok=True)
    for name in names:
        os.replace(staging / name, out / name)
    write_json(out / MANIFEST, {"files": names})
    return names


def package(stage_name: str, out: Path, region: str) -> list[str]:
    """Package the stage into out and return the names of the files written."""
    config = read_stage_config(stage_name)
    stage = terraform_stage(config, region)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".package-terraform-", dir=out.parent) as temporary:
        staging = Path(temporary) / "out"
        chalice = run_chalice_package(stage_name, region, staging)
        documents = terraform_files(stage, chalice)
        for name, document in documents.items():
            write_json(staging / name, document)
        write_json(staging / "terraform.tfvars.json.example", TFVARS_EXAMPLE)
        OUTPUT.progress(f"added {len(documents)} files, {len(resource_addresses(documents.values()))} resource blocks")
        return replace_output(staging, out)


# --- the configuration Terraform sees: override files merged in ---------------------------


def _merge_block(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    if "depends_on" in override:
        raise ValueError("Terraform refuses depends_on in an override block")
    merged = dict(base)
    for name, value in override.items():
        if name == "lifecycle" and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **value}
        elif name == "//":
            merged[name] = [*merged.get(name, []), *value]
        elif value is None:
            merged.pop(name, None)  # null leaves an argument unset
        else:
            merged[name] = value
    return merged


def _merge_into(bases: dict[str, dict[str, Any]], path: tuple[str, ...], override: dict[str, Any]) -> None:
    for document in bases.values():
        parent = document
        for step in path[:-1]:
            parent = parent.get(step, {})
        if path[-1] in parent:
            parent[path[-1]] = _merge_block(parent[path[-1]], override)
            return
    raise ValueError(f"override of {'.'.join(path)}, which no other file declares")


def _merge_terraform_block(bases: dict[str, dict[str, Any]], override: dict[str, Any]) -> None:
    for document in bases.values():
        if "terraform" in document:
            block = document["terraform"]
            providers = {**block.get("required_providers", {}), **override.get("required_providers", {})}
            document["terraform"] = {**block, **override, "required_providers": providers}
            return
    raise ValueError("override of the terraform block, which no other file declares")


def _replace_local(bases: dict[str, dict[str, Any]], name: str, value: Any) -> None:
    for document in bases.values():
        if name in document.get("locals", {}):
            document["locals"][name] = value
            return
    raise ValueError(f"override of local.{name}, which no other file declares")


def apply_overrides(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The configuration Terraform would see: *_override.tf.json merged into the files they override."""
    is_override = [name for name in files if name == "override.tf.json" or name.endswith("_override.tf.json")]
    bases = {name: json.loads(json.dumps(document)) for name, document in files.items() if name not in is_override}
    for name in is_override:
        for block_type, blocks in files[name].items():
            if block_type == "terraform":
                _merge_terraform_block(bases, blocks)
            elif block_type in ("resource", "data"):
                for resource_type, resources in blocks.items():
                    for resource_name, block in resources.items():
                        _merge_into(bases, (block_type, resource_type, resource_name), block)
            elif block_type == "locals":
                for local_name, value in blocks.items():
                    _replace_local(bases, local_name, value)
            else:
                for block_name, block in blocks.items():
                    _merge_into(bases, (block_type, block_name), block)
    return bases


def checkov_command() -> list[str] | None:
    """checkov from $CHECKOV, the project's .venv-checkov, or PATH; None if there is none."""
    candidates = [os.environ.get("CHECKOV", ""), str(CHECKOV_VENV / "bin" / "checkov"), shutil.which("checkov") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return [candidate]
    return None


@dataclass(frozen=True)
class CheckovFinding:
    """A check checkov failed, and the reason written next to the resource if there is one."""

    check_id: str
    check_name: str
    resource: str
    file_path: str
    reason: str | None


@dataclass(frozen=True)
class CheckovReport:
    """checkov's verdict on a packaged folder."""

    passed: int
    findings: list[CheckovFinding]
    parsing_errors: list[str]

    @property
    def explained(self) -> list[CheckovFinding]:
        """Failed checks whose resource carries a checkov:skip with a reason."""
        return [finding for finding in self.findings if finding.reason is not None]

    @property
    def unexplained(self) -> list[CheckovFinding]:
        """Failed checks nobody has answered for."""
        return [finding for finding in self.findings if finding.reason is None]

    @property
    def ok(self) -> bool:
        """Whether every file was read and every failed check has a reason."""
        return not self.unexplained and not self.parsing_errors


def write_checkov_view(out: Path, into: Path) -> None:
    """The folder as checkov can read it: the override merged in as Terraform does, no terraform blocks.

    checkov reads each *.tf.json on its own (an override would look like a second, partial
    resource) and its Terraform JSON parser fails on a `terraform` block, which holds only
    version pins that no check reads.
    """
    files = {path.name: json.loads(path.read_text()) for path in sorted(out.glob("*.tf.json"))}
    for name, document in apply_overrides(files).items():
        document.pop("terraform", None)
        write_json(into / name, document)


def _skip_reason(record: dict[str, Any]) -> str | None:
    marker = f"checkov:skip={record['check_id']}:"
    for _, line in record.get("code_block") or []:
        if marker in line:
            return line.split(marker, 1)[1].strip().rstrip('",').strip()
    return None


def run_checkov(out: Path) -> CheckovReport:
    """Run checkov on the packaged folder; a failed check counts as explained when its resource says why."""
    command = checkov_command()
    if command is None:
        raise PackagingError("checkov is not installed: `make checkov` creates .venv-checkov, or set CHECKOV")
    with tempfile.TemporaryDirectory(prefix="checkov-view-") as temporary:
        write_checkov_view(out, Path(temporary))
        arguments = ["-d", temporary, "--framework", "terraform_json", "--output", "json", "--skip-download"]
        result = subprocess.run([*command, *arguments], capture_output=True, text=True)
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise PackagingError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}") from None
    report = reports[0] if isinstance(reports, list) else reports
    results = report.get("results", {})
    findings = [
        CheckovFinding(
            check_id=record["check_id"],
            check_name=record.get("check_name", ""),
            resource=record.get("resource", ""),
            file_path=record.get("file_path", ""),
            reason=_skip_reason(record),
        )
        for record in results.get("failed_checks", [])
    ]
    parsing_errors = [Path(path).name for path in results.get("parsing_errors", [])]
    return CheckovReport(passed=len(results.get("passed_checks", [])), findings=findings, parsing_errors=parsing_errors)


def print_checkov_report(report: CheckovReport) -> None:
    """Progress lines: the counts, each skipped check with its reason, each unexplained failure."""
    OUTPUT.progress(
        f"checkov: {report.passed} passed, {len(report.explained)} skipped with a reason, "
        f"{len(report.unexplained)} failed, {len(report.parsing_errors)} files unreadable"
    )
    for finding in report.explained:
        OUTPUT.progress(f"  skipped {finding.check_id} on {finding.file_path} {finding.resource}: {finding.reason}")
    for finding in report.unexplained:
        OUTPUT.progress(f"  FAILED {finding.check_id} {finding.check_name} on {finding.file_path} {finding.resource}")
    for name in report.parsing_errors:
        OUTPUT.progress(f"  UNREADABLE {name}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.terraform.package",
        description="Package a Chalice stage for Terraform: chalice.tf.json plus the project's own *.tf.json files.",
        epilog="Then: terraform -chdir=OUT init && terraform -chdir=OUT apply "
        "(tenants in OUT/terraform.tfvars.json, see terraform.tfvars.json.example).",
    )
    parser.add_argument("--stage", required=True, help="the Chalice stage (dev or prod)")
    parser.add_argument("--out", type=Path, help="output folder (default build/terraform-STAGE)")
    parser.add_argument("--region", default=None, help=f"AWS region (default $AWS_DEFAULT_REGION or {DEFAULT_REGION})")
    parser.add_argument("--checkov", action="store_true", help="run checkov on the folder afterwards")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Package the stage; 0 on success, 1 on failure (or failed checkov checks)."""
    args = parse_args(argv)
    out = (args.out or PROJECT_DIR / "build" / f"terraform-{args.stage}").resolve()
    region = args.region or packaging_region()
    try:
        names = package(args.stage, out, region)
        OUTPUT.progress(f"wrote {out} ({len(names)} files)")
        if args.checkov:
            report = run_checkov(out)
            print_checkov_report(report)
            if not report.ok:
                return 1
    except (PackagingError, StageConfigError, ValueError, OSError) as error:
        OUTPUT.error(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
