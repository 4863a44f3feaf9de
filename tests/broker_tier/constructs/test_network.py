"""BrokerNetwork: on bare stacks (its own behaviour, from its properties), and as synthesized in every
environment of cdk.json."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from bare_stack import BareApp
from deployment import ACCOUNT, REGION
from tier_testing import ENVIRONMENTS, availability_zones_key, tier_context

from broker_tier.config import NetworkConfig, load_environments
from broker_tier.config.network import PRIVATE_SUBNET_PREFIX, PUBLIC_SUBNET_PREFIX
from broker_tier.constructs.network import BrokerNetwork

CONFIGS = load_environments(tier_context())

# -- on a bare stack ------------------------------------------------------------------------------------------
ZONES = [f"{REGION}{zone}" for zone in "abc"]
BARE_CONFIGS = {
    "Created": NetworkConfig(cidr="10.10.0.0/16", max_azs=3, nat_gateways=2, flow_log_retention_days=14),
    "Existing": NetworkConfig(vpc_id="vpc-0123456789abcdef0"),
}
"""Stack name -> the configuration of its BrokerNetwork (each pinned: the AZs of "Created" are in the context)."""


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp(context={availability_zones_key(ACCOUNT, REGION): ZONES})
    for name, config in BARE_CONFIGS.items():
        stack = app.stack(name, env=cdk.Environment(account=ACCOUNT, region=REGION))
        app.built[name] = BrokerNetwork(
            stack,
            "Network",
            config=config,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            logs_key=kms.Key(stack, "LogsKey"),
        )
    return app.synthesize()


def test_bare_vpc_has_a_public_and_a_private_subnet_in_each_az_and_the_configured_nat_gateways(bare):
    config = BARE_CONFIGS["Created"]
    assert bare.only("Created", "AWS::EC2::VPC")[1]["Properties"]["CidrBlock"] == config.cidr
    subnets = [s["Properties"] for s in bare.resources("Created", "AWS::EC2::Subnet").values()]
    for public, prefix in ((True, PUBLIC_SUBNET_PREFIX), (False, PRIVATE_SUBNET_PREFIX)):
        placed = [s for s in subnets if s["MapPublicIpOnLaunch"] is public]
        assert sorted(s["AvailabilityZone"] for s in placed) == ZONES[: config.max_azs], public
        assert {s["CidrBlock"].split("/")[1] for s in placed} == {str(prefix)}, public
    assert bare.count("Created", "AWS::EC2::NatGateway") == config.nat_gateways
    network = bare.built["Created"]
    assert len(network.private_subnet_ids) == config.max_azs
    assert network.private_subnets.subnet_type == ec2.SubnetType.PRIVATE_WITH_EGRESS


def test_bare_vpc_reaches_s3_through_a_gateway_endpoint_on_the_private_route_tables(bare):
    endpoint = bare.only("Created", "AWS::EC2::VPCEndpoint")[1]["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert bare.resolve("Created", endpoint["ServiceName"]) == f"com.amazonaws.{REGION}.s3"
    assert len(endpoint["RouteTableIds"]) == 2 * BARE_CONFIGS["Created"].max_azs  # public and private


def test_bare_vpc_logs_rejected_traffic_to_an_encrypted_log_group(bare):
    config = BARE_CONFIGS["Created"]
    flow_log = bare.only("Created", "AWS::EC2::FlowLog")[1]["Properties"]
    group_id, group = bare.only("Created", "AWS::Logs::LogGroup")
    assert (flow_log["TrafficType"], flow_log["LogDestinationType"]) == ("REJECT", "cloud-watch-logs")
    assert flow_log["LogGroupName"] == {"Ref": group_id}
    (key,) = bare.resources("Created", "AWS::KMS::Key")
    assert group["Properties"] == {"KmsKeyId": {"Fn::GetAtt": [key, "Arn"]}, "RetentionInDays": 14}
    assert config.flow_log_retention_days == 14 and group["DeletionPolicy"] == "Retain"


def test_bare_default_security_group_handler_is_told_to_skip_cfn_lint_w3005(bare):
    handlers = [
        r for r in bare.resources("Created", "AWS::Lambda::Function").values() if "cfn-lint" in r.get("Metadata", {})
    ]
    assert [h["Metadata"]["cfn-lint"] for h in handlers] == [{"config": {"ignore_checks": ["W3005"]}}]


def test_bare_existing_vpc_is_looked_up_and_nothing_is_created(bare):
    resources = bare.templates["Existing"]["Resources"].values()
    assert [r["Type"] for r in resources] == ["AWS::KMS::Key"]  # the test's logs key, and no VPC or flow log
    network = bare.built["Existing"]
    assert not isinstance(network.vpc, ec2.Vpc) and network.private_subnet_ids


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_private_subnets_in_each_az_with_nat_egress(synthesized, env):
    network = CONFIGS[env].network
    subnets = synthesized.resources(env, "State", "AWS::EC2::Subnet")
    private = [s for s in subnets.values() if not s["Properties"]["MapPublicIpOnLaunch"]]
    assert len(private) == network.max_azs
    # each private subnet sits in a different AZ, selected from Fn::GetAZs at deploy time
    assert sorted(s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in private) == list(range(network.max_azs))
    assert len(synthesized.resources(env, "State", "AWS::EC2::NatGateway")) == network.nat_gateways
    synthesized.template(env, "State").has_resource_properties("AWS::EC2::VPC", {"CidrBlock": network.cidr})


def test_prod_spans_three_azs_agnostic_or_pinned(synthesized):
    assert len(synthesized.resources("prod", "State", "AWS::EC2::NatGateway")) == 3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_flow_logs_and_s3_gateway_endpoint(synthesized, env):
    template = synthesized.template(env, "State")
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "REJECT", "LogDestinationType": "cloud-watch-logs"}
    )
    endpoint = synthesized.only(env, "State", "AWS::EC2::VPCEndpoint")["Properties"]
    assert "s3" in str(endpoint["ServiceName"])
