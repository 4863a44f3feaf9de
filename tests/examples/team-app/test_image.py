"""The team example's image and README without running it: its build context is complete once the README's copy
step is done, its first pip layer is the reference worker's (one install serves both in the test command), and
the README's ``cdk.json`` lines are a valid configuration that makes the stack run its app from its image."""

from __future__ import annotations

import json
import re

import pytest
from image_venvs import step_fingerprint
from team_example import EXAMPLE, readme_compute
from tier_testing import REDIS_MODE_CHANGES, ROOT, tier_context

import broker_tier_contract as contract
from broker_tier.config import load_environments
from broker_tier.config.loading import deep_merge
from broker_tier.tools.image_check import (
    TIER_FILES,
    WORKER_DIR,
    ImageCheckError,
    dockerfile_env,
    read_recipe,
    stage_application,
    stage_build_context,
)

README = (EXAMPLE / "README.md").read_text()


def test_the_build_context_is_complete_with_the_tier_files_the_readme_copies(tmp_path):
    context = stage_build_context(EXAMPLE, tmp_path / "context")
    recipe = read_recipe(context / "Dockerfile")
    assert set(TIER_FILES) <= set(recipe.sources)  # the Dockerfile uses each file the README copies
    assert all((context / source).exists() for source in recipe.sources)
    app = stage_application(tmp_path / "app", context=context)
    assert sorted(path.name for path in app.iterdir()) == [
        "broker_tier_celery",
        "broker_tier_contract",
        "requirements.txt",
        "team_app",
    ]
    for name, source in TIER_FILES.items():  # the README's step copies each, under the name the Dockerfile uses
        assert f"broker-tier/{source.relative_to(ROOT)}" in README and name in README


def test_a_copy_source_in_neither_the_context_nor_the_tier_files_is_named(tmp_path):
    context = tmp_path / "app"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM python\nRUN pip install -r requirements-tier.txt\nCOPY team_libs .\n")
    with pytest.raises(ImageCheckError, match="COPY team_libs: not in the build context"):
        stage_build_context(context, tmp_path / "staged")


def test_the_tier_layer_is_the_reference_workers_install(tmp_path):
    """Same pip options and the same pins: the shared install (tests/support/image_venvs.py) serves both images."""
    context = stage_build_context(EXAMPLE, tmp_path / "context")
    team, worker = read_recipe(context / "Dockerfile").pip_steps, read_recipe(WORKER_DIR / "Dockerfile").pip_steps
    assert len(team) == 2 and len(worker) == 1
    assert step_fingerprint(team[0], context) == step_fingerprint(worker[0], WORKER_DIR)
    assert step_fingerprint(team[1], context) != step_fingerprint(worker[0], WORKER_DIR)
    assert team[1].check and "--no-deps" in team[1].install_args  # the team's own pins are held to the same rule
    assert dockerfile_env(context / "Dockerfile")["REMAP_SIGTERM"] == "SIGQUIT"


def test_the_readmes_cdk_json_lines_configure_every_environment_with_the_team_image():
    compute = readme_compute()
    context = tier_context()
    context["defaults"] = deep_merge(context["defaults"], {"compute": compute})
    environments = load_environments(context)
    assert set(environments) == {"dev", "staging", "prod"}
    for config in environments.values():
        assert config.compute.image is not None and config.compute.image.repository_name == "team/app"
        assert config.compute.celery_app == compute["celery_app"]
    module, _, attribute = compute["celery_app"].partition(":")
    assert re.search(rf"^{attribute} = Celery\(", (EXAMPLE / f"{module.replace('.', '/')}.py").read_text(), re.M)


def test_a_team_image_is_pulled_and_its_app_run_by_every_celery_service(redis_mode_dev):
    """The tests' team-image variant (REDIS_MODE_CHANGES, synthesized once per run) names the README's app."""
    assert REDIS_MODE_CHANGES["compute"]["celery_app"] == readme_compute()["celery_app"]
    resources = redis_mode_dev[contract.COMPUTE]["Resources"]
    containers = [
        r["Properties"]["ContainerDefinitions"][0]
        for r in resources.values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
    ]
    celery = [container for container in containers if container["Command"][0] == "celery"]
    assert len(celery) == 4  # three classes and Beat
    assert {tuple(c["Command"][:3]) for c in celery} == {("celery", "-A", readme_compute()["celery_app"])}
    assert all("/team/app@sha256:" in json.dumps(c["Image"]) for c in celery)
    pulls = [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "ecr:BatchGetImage" in statement["Action"]
    ]
    assert len(pulls) == 4  # each service's execution role
    # the repository's ARN: pseudo parameters joined (agnostic) or literal (a cdk.json pinned to an account)
    assert all(
        json.dumps(statement["Resource"]).endswith(':repository/team/app"]]}')
        or re.fullmatch(r"arn:aws:ecr:[a-z0-9-]+:\d{12}:repository/team/app", str(statement["Resource"]))
        for statement in pulls
    )
