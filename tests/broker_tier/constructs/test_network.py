"""BrokerNetwork, as synthesized in every environment of cdk.json."""

from __future__ import annotations

import pytest
from tier_testing import ENVIRONMENTS, tier_context

from broker_tier.config import load_environments

CONFIGS = load_environments(tier_context())


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
