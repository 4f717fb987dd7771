"""infra/terraform, checked offline: format, checkov, project policies on the parsed HCL, and the
manifest module evaluated by Terraform itself.

`terraform validate`/`plan` of the root module need the google provider, which cannot be
downloaded here. Everything that decides *which* functions exist and what each may do lives in
``modules/functions``, which has no providers: Terraform evaluates it for real below, against the
repository's manifest and against broken copies of it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

from functions.manifest import load_manifest
from tests.deploy.artifacts import ROOT

TF_DIR = ROOT / "infra" / "terraform"
MODULE_DIR = TF_DIR / "modules" / "functions"
MANIFEST_PATH = ROOT / "functions" / "functions.json"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False)


def _terraform() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform not installed (it is not packaged for Debian or PyPI): Terraform not checked")
    return path


def _tf_env(tmp: Path) -> dict[str, str]:
    return os.environ | {
        "TF_DATA_DIR": str(tmp / ".terraform"),
        "TF_CLI_CONFIG_FILE": os.devnull,  # no plugin mirrors or credentials of the user
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check against HashiCorp's servers
    }


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# --- format and checkov -------------------------------------------------------------------------


def test_terraform_is_formatted(tmp_path: Path) -> None:
    terraform = _terraform()
    env = _tf_env(tmp_path)
    result = _run([terraform, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    # fmt only reads .tf/.tfvars: check the example under the name it is meant to be copied to.
    example = tmp_path / "terraform.tfvars"
    shutil.copy(TF_DIR / "terraform.tfvars.example", example)
    result = _run([terraform, "fmt", "-check", "-diff", str(example)], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr


def _checkov(*args: str) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.skip("checkov not installed in .venv-checkov: bash scripts/setup-deploy")
    result = subprocess.run(
        [str(CHECKOV), *args, "--skip-download", "--output", "json"],  # --skip-download: offline
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert isinstance(report, dict)
    return report


def _skip_comments(paths: list[Path]) -> dict[str, str]:
    found = {}
    for path in paths:
        for check, reason in re.findall(r"#\s*checkov:skip=([A-Z0-9_]+):(.*)$", path.read_text(), re.M):
            found[check] = reason.strip()
    return found


def _assert_clean(report: dict[str, Any], sources: list[Path]) -> None:
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    # Every skip is deliberate: a suppression comment with a reason, in the checked sources.
    reasons = _skip_comments(sources)
    for skipped in report["results"]["skipped_checks"]:
        assert len(reasons.get(skipped["check_id"], "")) >= 30, (
            f"{skipped['check_id']} skipped without a reason"
        )


def test_checkov_passes_on_terraform() -> None:
    report = _checkov("--directory", str(TF_DIR), "--framework", "terraform")
    _assert_clean(report, sorted(TF_DIR.rglob("*.tf")))
    passed = {(c["check_id"], c["resource"]) for c in report["results"]["passed_checks"]}
    # checkov's own ingress check sees the (single, for_each) function resource as internal-only.
    assert ("CKV_GCP_124", "google_cloudfunctions2_function.function") in passed


def test_checkov_passes_on_the_dockerfile() -> None:
    report = _checkov("--file", str(ROOT / "Dockerfile"), "--framework", "dockerfile")
    _assert_clean(report, [ROOT / "Dockerfile"])
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3"} <= passed  # HEALTHCHECK present, non-root USER


# --- policies on the parsed HCL -----------------------------------------------------------------


class Hcl:
    """Every .tf file of the root module, merged: resources by (type, name), locals, variables..."""

    def __init__(self, directory: Path) -> None:
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.data: dict[tuple[str, str], dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.modules: dict[str, dict[str, Any]] = {}
        self.text = ""
        for path in sorted(directory.glob("*.tf")):
            self.text += path.read_text()
            with path.open() as handle:
                parsed = hcl2.load(handle, serialization_options=HCL_OPTIONS)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in parsed.get(kind, []):
                    for rtype, named in block.items():
                        for name, body in named.items():
                            target[(rtype, name)] = body
            for block in parsed.get("locals", []):
                self.locals.update(block)
            for block in parsed.get("variable", []):
                self.variables.update(block)
            for block in parsed.get("output", []):
                self.outputs.update(block)
            for block in parsed.get("module", []):
                self.modules.update(block)

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {name: body for (kind, name), body in self.resources.items() if kind == rtype}


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _dynamic(block: dict[str, Any], name: str) -> dict[str, Any]:
    for item in block.get("dynamic", []):
        if name in item:
            return dict(item[name])
    raise AssertionError(f"no dynamic {name} block")


@pytest.fixture(scope="module")
def hcl() -> Hcl:
    return Hcl(TF_DIR)


def test_every_function_resource_iterates_the_manifest(hcl: Hcl) -> None:
    module = hcl.modules["functions"]
    assert module["source"] == "./modules/functions"
    manifest = module["manifest_path"].replace("${path.module}", str(TF_DIR))
    assert Path(manifest).resolve() == MANIFEST_PATH
    assert hcl.locals["functions"] == "${module.functions.functions}"
    # Every per-function resource has one instance per manifest entry (or per subset of them).
    for rtype, name in [
        ("google_cloudfunctions2_function", "function"),
        ("google_service_account", "function"),
        ("google_storage_bucket_object", "source"),
    ]:
        assert hcl.resources[(rtype, name)]["for_each"] == "${local.functions}", (rtype, name)
    assert hcl.locals["exposed"].startswith("${{for name, f in local.functions :")
    assert hcl.locals["pushed"].startswith("${{for name, f in local.functions :")
    # No other way to run code that would escape these policies.
    for rtype in (
        "google_cloudfunctions_function",
        "google_cloud_run_service",
        "google_cloud_run_v2_service",
    ):
        assert not hcl.of_type(rtype), rtype
    assert list(hcl.of_type("google_cloudfunctions2_function")) == ["function"]


def test_every_function_is_internal_only_with_its_own_identity_and_egress_through_the_vpc(hcl: Hcl) -> None:
    function = hcl.resources[("google_cloudfunctions2_function", "function")]
    service = _one(function["service_config"])
    assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert service["service_account_email"] == "${google_service_account.function[each.key].email}"
    assert (
        hcl.resources[("google_service_account", "function")]["account_id"]
        == "${each.value.service_account_id}"
    )
    assert service["vpc_connector"] == "${google_vpc_access_connector.functions.id}"
    assert service["vpc_connector_egress_settings"] == "ALL_TRAFFIC"
    subnet = hcl.resources[("google_compute_subnetwork", "connector")]
    assert subnet["private_ip_google_access"] is True  # Google APIs answer with all traffic in the VPC
    build = _one(function["build_config"])
    assert build["service_account"] == "${google_service_account.build.id}"
    assert build["entry_point"] == "${each.value.entry_point}"


def test_secrets_come_only_from_secret_manager(hcl: Hcl) -> None:
    service = _one(hcl.resources[("google_cloudfunctions2_function", "function")]["service_config"])
    secret = _dynamic(service, "secret_environment_variables")
    content = _one(secret["content"])
    assert content["secret"] == "${data.google_secret_manager_secret.registry.secret_id}"
    assert secret["for_each"] == '${each.value.registry_secret ? ["CR_CREDENTIALS"] : []}'
    assert service["environment_variables"] == "${local.function_environment[each.key]}"
    plain = hcl.locals["function_environment"] + json.dumps(hcl.locals["common_environment"])
    assert "secret" not in plain.lower() and "CR_CREDENTIALS" not in plain
    # The secret's value never passes through Terraform: no version resource, no value variable.
    assert not hcl.of_type("google_secret_manager_secret_version")
    assert "registry_secret_id" in hcl.variables
    suspicious = [
        n
        for n in hcl.variables
        if re.search(r"secret|password|token|credential", n) and not n.endswith("_id")
    ]
    assert suspicious == []
    for name, output in hcl.outputs.items():
        assert "secret" not in json.dumps(output).lower(), f"output {name} touches the secret"


def test_function_identities_get_no_project_wide_role(hcl: Hcl) -> None:
    for rtype in ("google_project_iam_member", "google_project_iam_binding", "google_project_iam_policy"):
        for name, body in hcl.of_type(rtype).items():
            assert "google_service_account.function" not in json.dumps(body), (rtype, name)
    grants = {
        (rtype, name)
        for (rtype, name), body in hcl.resources.items()
        if rtype.endswith("_iam_member") and "google_service_account.function[" in json.dumps(body)
    }
    assert grants == {
        ("google_secret_manager_secret_iam_member", "registry"),
        ("google_pubsub_topic_iam_member", "publisher"),
    }


def test_only_functions_behind_the_load_balancer_admit_unauthenticated_calls(hcl: Hcl) -> None:
    public = [
        (rtype, name)
        for (rtype, name), body in hcl.resources.items()
        if "allUsers" in json.dumps(body) or "allAuthenticatedUsers" in json.dumps(body)
    ]
    assert public == [("google_cloud_run_service_iam_member", "broker")]
    assert hcl.resources[public[0]]["for_each"] == "${local.exposed}"


# --- the manifest module, evaluated by Terraform --------------------------------------------------

WRAPPER = """
variable "manifest_path" {
  type = string
}
module "functions" {
  source        = "./functions"
  manifest_path = var.manifest_path
  name_prefix   = "ra"
}
output "functions" {
  value = module.functions.functions
}
output "topics" {
  value = module.functions.topics
}
output "default_function" {
  value = module.functions.default_function
}
"""


class ManifestModule:
    def __init__(self, terraform: str, workdir: Path) -> None:
        self.terraform = terraform
        self.workdir = workdir
        self.env = _tf_env(workdir)
        shutil.copytree(MODULE_DIR, workdir / "functions")
        (workdir / "main.tf").write_text(WRAPPER)
        result = self._tf("init", "-backend=false")
        assert result.returncode == 0, result.stdout + result.stderr

    def _tf(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run([self.terraform, *args, "-no-color"], self.workdir, self.env)

    def evaluate(self, manifest: Path) -> dict[str, Any]:
        state = self.workdir / f"{manifest.stem}.tfstate"
        result = self._tf("apply", "-auto-approve", f"-state={state}", f"-var=manifest_path={manifest}")
        assert result.returncode == 0, result.stdout + result.stderr
        outputs = _run([self.terraform, "output", "-json", f"-state={state}"], self.workdir, self.env)
        return {name: item["value"] for name, item in json.loads(outputs.stdout).items()}

    def plan_error(self, manifest: Path) -> str:
        result = self._tf("plan", f"-var=manifest_path={manifest}")
        assert result.returncode != 0, f"the plan accepted a broken manifest:\n{result.stdout}"
        return " ".join((result.stdout + result.stderr).split())


@pytest.fixture(scope="module")
def manifest_module(tmp_path_factory: pytest.TempPathFactory) -> ManifestModule:
    return ManifestModule(_terraform(), tmp_path_factory.mktemp("tf-manifest"))


@pytest.fixture(scope="module")
def evaluated(manifest_module: ManifestModule) -> dict[str, Any]:
    return manifest_module.evaluate(MANIFEST_PATH)


def test_terraform_deploys_exactly_the_manifest_functions(evaluated: dict[str, Any]) -> None:
    manifest = load_manifest()
    functions = evaluated["functions"]
    assert set(functions) == {spec.name for spec in manifest.functions}
    for spec in manifest.functions:
        planned = functions[spec.name]
        assert planned["entry_point"] == spec.entry_point
        assert planned["signature_type"] == spec.signature_type
        assert planned["deploy_name"] == f"ra-{spec.name}"
    identities = [f["service_account_id"] for f in functions.values()]
    assert len(set(identities)) == len(identities)  # one service account per function
    assert all(len(i) <= 30 for i in identities)


def test_the_load_balancer_routes_what_the_emulator_routes(evaluated: dict[str, Any]) -> None:
    functions = evaluated["functions"]
    for spec in load_manifest().http_functions:
        planned = functions[spec.name]
        assert planned["paths"] == [route.pattern for route in spec.routes]
        if planned["exposed"]:
            continue
        # Not behind the load balancer: reached only by a push subscription, at its one route.
        assert planned["push_topic"] is not None and planned["push_path"] == planned["paths"][0]
    assert evaluated["default_function"] == "describe"  # the /healthcheck owner


def test_every_topic_has_a_publisher_and_a_consumer(evaluated: dict[str, Any]) -> None:
    functions = evaluated["functions"].values()
    for spec in load_manifest().functions:
        if spec.trigger == "pubsub":
            assert evaluated["functions"][spec.name]["push_topic"] == spec.topic_setting
            assert any(spec.topic_setting in f["publishes"] for f in functions), spec.topic_setting
    consumed = {f["push_topic"] for f in functions if f["push_topic"]}
    assert set(evaluated["topics"]) == consumed | {s for f in functions for s in f["publishes"]}


def _mutated(tmp_path: Path, change: Any) -> Path:
    data = json.loads(MANIFEST_PATH.read_text())
    change({f["name"]: f for f in data["functions"]}, data["functions"])
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(data))
    return path


def _add_function(by_name: dict[str, Any], listed: list[dict[str, Any]]) -> None:
    listed.append(
        {
            "name": "gc",
            "entryPoint": "gc",
            "module": "functions.gc",
            "trigger": "http",
            "routes": ["POST /gc"],
        }
    )


def _drop_topic(by_name: dict[str, Any], listed: list[dict[str, Any]]) -> None:
    del by_name["scan-event"]["topicSetting"]


def _unknown_topic(by_name: dict[str, Any], listed: list[dict[str, Any]]) -> None:
    by_name["scan-event"]["topicSetting"] = "AUDIT_TOPIC"


def _unknown_trigger(by_name: dict[str, Any], listed: list[dict[str, Any]]) -> None:
    by_name["scan-event"]["trigger"] = "schedule"


def _inner_wildcard(by_name: dict[str, Any], listed: list[dict[str, Any]]) -> None:
    by_name["describe"]["routes"].append("GET /image-metadata/*/config")


def _shared_path(by_name: dict[str, Any], listed: list[dict[str, Any]]) -> None:
    by_name["list-images"]["routes"].append("GET /healthcheck")


def _second_push_route(by_name: dict[str, Any], listed: list[dict[str, Any]]) -> None:
    by_name["callback"]["routes"].append("POST /callback/*")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_add_function, "no entry in the access table of infra/terraform/modules/functions/main.tf: gc."),
        (_drop_topic, "a pubsub trigger needs topicSetting): scan-event"),
        (_unknown_topic, "a pubsub trigger needs topicSetting): scan-event"),
        (_unknown_trigger, "a trigger this deployment cannot create (http, pubsub): scan-event"),
        (_inner_wildcard, 'cannot express ("*" only as a final "/*"): describe: /image-metadata/*/config'),
        (_shared_path, "Paths served by more than one exposed function: /healthcheck"),
        (_second_push_route, "invoked by Pub/Sub push need exactly one route"),
    ],
    ids=["new-function", "pubsub-without-topic", "unknown-topic", "unknown-trigger", "inner-wildcard",
         "shared-path", "push-with-two-routes"],
)  # fmt: skip
def test_a_manifest_change_terraform_cannot_deploy_fails_the_plan(
    manifest_module: ManifestModule, tmp_path: Path, change: Any, message: str
) -> None:
    assert message in manifest_module.plan_error(_mutated(tmp_path, change))


# --- variables: the root module's validation, evaluated by Terraform -----------------------------


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """variables.tf alone: its validation rules need no provider, so Terraform can run them here."""
    terraform = _terraform()
    workdir = tmp_path_factory.mktemp("tf-variables")
    shutil.copy(TF_DIR / "variables.tf", workdir / "variables.tf")
    shutil.copy(TF_DIR / "terraform.tfvars.example", workdir / "example.tfvars")
    result = _run([terraform, "init", "-backend=false", "-no-color"], workdir, _tf_env(workdir))
    assert result.returncode == 0, result.stderr
    yield terraform, workdir


def _plan_variables(variables_only: tuple[str, Path], *overrides: str) -> subprocess.CompletedProcess[str]:
    terraform, workdir = variables_only
    argv = [terraform, "plan", "-no-color", "-var-file=example.tfvars", *(f"-var={o}" for o in overrides)]
    return _run(argv, workdir, _tf_env(workdir))


def test_the_example_variables_are_valid(variables_only: tuple[str, Path]) -> None:
    result = _plan_variables(variables_only)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('environment={CR_CREDENTIALS="eyJ0eXBlIjoiZ2VuZXJpYyJ9"}', "must not carry credentials"),
        ('environment={REGISTRY_PASSWORD="hunter2"}', "must not carry credentials"),
        ('environment={PUBSUB_TOPIC="x"}', "must not set what this module derives"),
        ("registry_secret_id=eyJ0eXBlIjoiZ2VuZXJpYyJ9==", "not a secret value"),
        ("broker_client_url=http://broker.internal", "scheme and port as required"),
        ("connector_cidr=10.8.0.0/24", "must be an IPv4 /28 range"),
        ("name_prefix=registry-agent-prod", "name_prefix must be 1-10 characters"),
    ],
)
def test_variables_refuse_what_must_not_be_deployed(
    variables_only: tuple[str, Path], override: str, message: str
) -> None:
    result = _plan_variables(variables_only, override)
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())
