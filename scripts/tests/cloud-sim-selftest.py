#!/usr/bin/env python3
"""Self-check of scripts/tests/cloud-sim.py against its interface contract.

Starts the harness, drives it over stdin/stdout, and checks it with real clients: boto3/botocore
against the EC2/STS endpoint (raw XML too, because boto3 drops fields it does not model), botocore's
own IMDS and container credential fetchers, and urllib for the IMDSv2 edge cases.
Run: python3 scripts/tests/cloud-sim-selftest.py   (exit 0 on success)
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.utils

HERE = os.path.dirname(os.path.abspath(__file__))
READY_KEYS = {"ec2", "imds", "containerCredentials", "region", "availabilityZone", "instanceId",
              "vpcId", "vpcCidr", "subnetId", "subnetCidr", "primaryEni", "role"}
CHECKS = []


def check(cond, what):
    CHECKS.append(what)
    if not cond:
        raise AssertionError(what)


class Sim:
    def __init__(self, *options):
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "cloud-sim.py"), *options],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = json.loads(self.proc.stdout.readline())
        self.start_seconds = time.monotonic() - started

    def __call__(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def raw(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        started = time.monotonic()
        code = self.proc.wait(timeout=10)
        return code, time.monotonic() - started


def http(method, url, headers=None, data=None):
    """(status, body text, headers) without raising on HTTP errors."""
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers


class Imds:
    def __init__(self, base):
        self.base = base

    def token(self, ttl="60", extra=None):
        return http("PUT", self.base + "/latest/api/token",
                    {"X-aws-ec2-metadata-token-ttl-seconds": ttl, **(extra or {})})

    def get(self, path, token):
        headers = {"X-aws-ec2-metadata-token": token} if token is not None else {}
        return http("GET", self.base + "/latest/meta-data/" + path, headers)


def ec2_client(sim, retries=3):
    return boto3.client("ec2", endpoint_url=sim.ready["ec2"], region_name=sim.ready["region"],
                        aws_access_key_id="AKIDSELFTEST00000000", aws_secret_access_key="x",
                        config=botocore.config.Config(retries={"total_max_attempts": retries,
                                                               "mode": "standard"}))


def raw_describe_xml(ec2, **kwargs):
    """DescribeNetworkInterfaces' raw XML, as the wire carried it."""
    seen = []
    ec2.meta.events.register("after-call.ec2.DescribeNetworkInterfaces",
                             lambda http_response, **_: seen.append(http_response.text))
    parsed = ec2.describe_network_interfaces(**kwargs)
    ec2.meta.events.unregister("after-call.ec2.DescribeNetworkInterfaces")
    return parsed, seen[-1]


def test_ready(sim):
    r = sim.ready
    check(set(r) == READY_KEYS, f"ready line has exactly the contract's keys: {sorted(r)}")
    check(set(r["primaryEni"]) == {"eniId", "mac", "ip", "deviceIndex"}, "primaryEni keys")
    check(r["primaryEni"]["deviceIndex"] == 0, "primary ENI is device 0")
    check((r["vpcCidr"], r["subnetCidr"], r["availabilityZone"]) == ("10.0.0.0/16", "10.0.0.0/19", "us-west-2a"),
          "initial VPC/subnet/AZ")
    check(r["containerCredentials"] == r["imds"] + "/v1/credentials", "container credentials URL")
    check(r["role"] == "node-role", "role name")
    state = sim(cmd="state")
    check(state["ok"] and state["enis"][0]["interfaceType"] == "interface", "state lists the primary ENI")
    check(state["vpcCidrs"] == ["10.0.0.0/16"], "state vpcCidrs")


def test_ec2_interface_type(sim):
    ec2 = ec2_client(sim)
    r = sim.ready
    inst = ec2.describe_instances(InstanceIds=[r["instanceId"]])["Reservations"][0]["Instances"][0]
    check(inst["State"]["Name"] == "running" and inst["SubnetId"] == r["subnetId"], "instance runs in the subnet")
    trunk = sim(cmd="create_eni", type="trunk", attach=True)
    check(trunk["ok"] and trunk["deviceIndex"] == 1, f"trunk attached at device 1: {trunk}")
    flt = [{"Name": "attachment.instance-id", "Values": [r["instanceId"]]}]
    parsed, xml = raw_describe_xml(ec2, Filters=flt)
    types = {e["NetworkInterfaceId"]: e.get("InterfaceType") for e in parsed["NetworkInterfaces"]}
    check(types == {r["primaryEni"]["eniId"]: "interface", trunk["eniId"]: "trunk"},
          f"boto3 sees the trunk's InterfaceType: {types}")
    check("<interfaceType>trunk</interfaceType>" in xml, "raw XML carries <interfaceType>trunk</interfaceType>")
    made = ec2.create_network_interface(SubnetId=r["subnetId"], InterfaceType="trunk")["NetworkInterface"]
    check(made.get("InterfaceType") == "trunk", "CreateNetworkInterface honours InterfaceType (extension)")
    ec2.delete_network_interface(NetworkInterfaceId=made["NetworkInterfaceId"])
    return trunk


def test_imds_rules(sim):
    imds = Imds(sim.ready["imds"])
    status, token, headers = imds.token("21600")
    check(status == 200 and token and headers["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] == "21600", "token PUT")
    for bad in ("0", "21601", "abc", ""):
        check(imds.token(bad)[0] == 400, f"TTL {bad!r} -> 400")
    check(http("PUT", imds.base + "/latest/api/token")[0] == 400, "missing TTL -> 400")
    check(imds.token("60", {"X-Forwarded-For": "1.2.3.4"})[0] == 403, "X-Forwarded-For -> 403")
    check(http("GET", imds.base + "/latest/api/token")[0] == 405, "GET token -> 405")
    check(imds.get("instance-id", None)[0] == 401, "no token -> 401")
    check(imds.get("instance-id", "bogus")[0] == 401, "unknown token -> 401")
    check(imds.get("no-such-thing", token)[0] == 404, "unknown path -> 404")
    check(imds.get("instance-id", token)[1] == sim.ready["instanceId"], "instance-id")
    check(imds.get("placement/region", token)[1] == "us-west-2", "placement/region")
    check(imds.get("placement/availability-zone", token)[1] == "us-west-2a", "placement/availability-zone")
    check(imds.get("mac", token)[1] == sim.ready["primaryEni"]["mac"], "mac")
    check(imds.get("local-ipv4", token)[1] == sim.ready["primaryEni"]["ip"], "local-ipv4")
    short = imds.token("1")[1]
    check(imds.get("instance-id", short)[0] == 200, "1s token works at once")
    time.sleep(1.2)
    check(imds.get("instance-id", short)[0] == 401, "expired token -> 401")
    sim(cmd="expire_tokens")
    check(imds.get("instance-id", token)[0] == 401, "expire_tokens -> 401")
    return imds.token("600")[1]


def test_imds_network(sim, token, trunk):
    imds, r = Imds(sim.ready["imds"]), sim.ready
    status, macs, _ = imds.get("network/interfaces/macs/", token)
    check(status == 200 and macs.split("\n") == [r["primaryEni"]["mac"] + "/", trunk["mac"] + "/"],
          f"macs listing, one '<mac>/' per line, no trailing newline: {macs!r}")
    base = f"network/interfaces/macs/{trunk['mac']}/"
    want = {"device-number": "1", "interface-id": trunk["eniId"], "subnet-id": r["subnetId"],
            "subnet-ipv4-cidr-block": "10.0.0.0/19", "vpc-id": r["vpcId"],
            "vpc-ipv4-cidr-block": "10.0.0.0/16", "vpc-ipv4-cidr-blocks": "10.0.0.0/16",
            "local-ipv4s": trunk["ip"], "mac": trunk["mac"], "network-card": "0"}
    for leaf, value in want.items():
        got = imds.get(base + leaf, token)
        check(got == (200, value, got[2]), f"{leaf} = {value!r} (got {got[:2]})")
    check(sim(cmd="add_vpc_cidr", cidr="100.64.0.0/16")["ok"], "add_vpc_cidr")
    for mac in (r["primaryEni"]["mac"], trunk["mac"]):
        blocks = imds.get(f"network/interfaces/macs/{mac}/vpc-ipv4-cidr-blocks", token)[1]
        check(blocks == "10.0.0.0/16\n100.64.0.0/16", f"vpc-ipv4-cidr-blocks primary first: {blocks!r}")
    check(sim(cmd="state")["vpcCidrs"] == ["10.0.0.0/16", "100.64.0.0/16"], "state vpcCidrs after add")
    extra = sim(cmd="create_eni", type="interface", attach=True)
    check(extra["deviceIndex"] == 2, "next free device index")
    check(sim(cmd="detach_eni", eniId=extra["eniId"])["ok"], "detach_eni")
    check(extra["mac"] not in imds.get("network/interfaces/macs/", token)[1], "detached MAC no longer listed")
    check(not sim(cmd="detach_eni", eniId=r["primaryEni"]["eniId"])["ok"], "primary ENI cannot be detached")
    loose = sim(cmd="create_eni", type="interface", attach=False)
    check(loose["ok"] and loose["deviceIndex"] is None, "create_eni attach=false")
    check(imds.get("iam/security-credentials/", token)[1] == "node-role", "iam role listing")
    creds = json.loads(imds.get("iam/security-credentials/node-role", token)[1])
    check(set(creds) == {"Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
          and creds["Code"] == "Success" and creds["Expiration"].endswith("Z"), "role credentials JSON")


def test_sdk_clients(sim):
    """botocore's own IMDS and container-credential fetchers accept what the harness serves."""
    base = sim.ready["imds"] + "/"
    fetcher = botocore.utils.InstanceMetadataFetcher(timeout=2, num_attempts=1, base_url=base)
    creds = fetcher.retrieve_iam_role_credentials()
    check(creds.get("role_name") == "node-role" and creds["access_key"].startswith("ASIA"),
          "botocore InstanceMetadataFetcher gets the role credentials")
    region = botocore.utils.InstanceMetadataRegionFetcher(timeout=2, num_attempts=1, base_url=base).retrieve_region()
    check(region == "us-west-2", "botocore InstanceMetadataRegionFetcher")
    provider = botocore.credentials.ContainerProvider(environ={
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": sim.ready["containerCredentials"],
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pod-identity-token"})
    check(provider.load().get_frozen_credentials().access_key.startswith("ASIA"),
          "botocore ContainerProvider (Pod Identity) gets credentials")


def test_container_credentials(sim):
    url = sim.ready["containerCredentials"]
    sim(cmd="reset_counts")
    check(http("GET", url)[0] == 401, "container creds without token -> 401")
    check(http("GET", url, {"Authorization": "nope"})[0] == 401, "wrong token -> 401")
    status, body, _ = http("GET", url, {"Authorization": "pod-identity-token"})
    check(status == 200 and set(json.loads(body)) == {"AccessKeyId", "SecretAccessKey", "Token",
                                                        "AccountId", "Expiration"}, "container creds JSON")
    sim(cmd="container_token", token="abc")
    check(http("GET", url, {"Authorization": "pod-identity-token"})[0] == 401, "old token refused")
    check(http("GET", url, {"Authorization": "abc"})[0] == 200, "new container token accepted")
    check(sim(cmd="requests")["containerCredentials"] == 5, "container credential requests counted")


def test_imds_faults(sim):
    imds = Imds(sim.ready["imds"])
    token = imds.token("600")[1]
    sim(cmd="reset_counts")
    check(sim(cmd="imds_fault", status=500, count=2, delay=0)["ok"], "imds_fault set")
    check(imds.token("600")[0] == 500, "fault hits the token PUT")
    check(imds.get("mac", token)[0] == 500, "fault hits the second request")
    check(imds.get("mac", token)[0] == 200, "fault used up after count")
    sim(cmd="imds_fault", status=0, count=1, delay=0.4)
    started = time.monotonic()
    status = imds.get("mac", token)[0]
    check(status == 200 and time.monotonic() - started >= 0.4, "delay-only fault is slow but answers")
    sim(cmd="imds_fault", status=503, count=5)
    sim(cmd="imds_fault", status=503, count=0)
    check(imds.get("mac", token)[0] == 200, "count 0 clears the fault")
    counts = sim(cmd="requests")["imds"]
    check(counts == {"PUT /latest/api/token": 1, "GET /latest/meta-data/mac": 4},
          f"IMDS requests counted per 'METHOD path': {counts}")


def test_ec2_faults_and_recording(sim):
    ec2 = ec2_client(sim, retries=1)
    sim(cmd="reset_counts")
    sim(cmd="ec2_fault", code="RequestLimitExceeded", status=503, count=1)
    try:
        ec2.describe_network_interfaces()
        check(False, "ec2 fault raises")
    except botocore.exceptions.ClientError as err:
        meta = err.response
        check(meta["Error"]["Code"] == "RequestLimitExceeded"
              and meta["ResponseMetadata"]["HTTPStatusCode"] == 503, f"ec2 fault answer: {meta['Error']}")
    sim(cmd="ec2_fault", code="InternalError", status=500, count=1)
    status, xml, _ = http("POST", sim.ready["ec2"], {"Content-Type": "application/x-www-form-urlencoded"},
                          b"Action=DescribeNetworkInterfaces&Version=2016-11-15")
    check(status == 500 and xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
                                          "<Code>InternalError</Code>") and "<RequestID>" in xml,
          "EC2 error document shape")
    ec2.describe_network_interfaces()
    counts = sim(cmd="requests")["ec2"]
    check(counts == {"DescribeNetworkInterfaces": 3}, f"EC2 requests counted per Action: {counts}")
    last = sim(cmd="last_ec2_request")
    check(last["ok"] and last["method"] == "POST" and last["path"] == "/"
          and "/us-west-2/ec2/aws4_request" in last["headers"]["Authorization"]
          and "X-Amz-Date" in last["headers"] and "Action=DescribeNetworkInterfaces" in last["body"],
          f"last_ec2_request records the signed request: {last}")
    sim(cmd="reset_counts")
    check(sim(cmd="requests") == {"ok": True, "imds": {}, "ec2": {}, "containerCredentials": 0}, "reset_counts")


def test_sts(sim):
    body = ("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/x"
            "&RoleSessionName=s&WebIdentityToken=tok")
    status, xml, _ = http("POST", sim.ready["ec2"], {"Content-Type": "application/x-www-form-urlencoded"},
                          body.encode())
    check(status == 200 and "<AssumeRoleWithWebIdentityResult>" in xml and "<AccessKeyId>" in xml,
          f"unsigned AssumeRoleWithWebIdentity answered by moto STS: {status} {xml[:200]}")
    padded = body.replace("tok", "eyJhbGciOi==.e30=.sig==")  # '=' in a value broke moto's routing
    check(http("POST", sim.ready["ec2"], {"Content-Type": "application/x-www-form-urlencoded"},
               padded.encode())[0] == 200, "unsigned STS with '=' in a value")
    sts = boto3.client("sts", endpoint_url=sim.ready["ec2"], region_name="us-west-2",
                       aws_access_key_id="AKIDSELFTEST00000000", aws_secret_access_key="x",
                       config=botocore.config.Config(retries={"total_max_attempts": 1}))
    check(sts.get_caller_identity()["Account"] == "123456789012", "signed STS GetCallerIdentity")
    assumed = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="selftest")
    check(assumed["Credentials"]["AccessKeyId"], "signed STS AssumeRole")
    web = sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::123456789012:role/x",
                                            RoleSessionName="selftest", WebIdentityToken="tok-tok-tok")
    check(web["Credentials"]["AccessKeyId"], "boto3 AssumeRoleWithWebIdentity")
    last = sim(cmd="last_ec2_request")
    check("Action=AssumeRoleWithWebIdentity" in last["body"], "STS requests recorded too")
    sim(cmd="ec2_fault", code="Throttling", status=400, count=1)
    try:
        sts.get_caller_identity()
        check(False, "STS fault raises")
    except botocore.exceptions.ClientError as err:
        check(err.response["Error"]["Code"] == "Throttling", "ec2_fault also hits STS")


def test_protocol_errors(sim):
    check(sim(cmd="nope")["ok"] is False, "unknown command -> ok false")
    check(sim.raw("{not json")["ok"] is False, "bad JSON -> ok false")
    check(sim(cmd="detach_eni", eniId="eni-doesnotexist")["ok"] is False, "bad ENI id -> ok false")


def expect_error(code, what, call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        check(e.response["Error"]["Code"] == code, f"{what}: {code}, got {e.response['Error']['Code']}")
        return
    check(False, f"{what}: {code} expected, the call succeeded")


def test_pool_calls(sim, trunk):
    """The regular-pod pool's calls as botocore sees them (the harness's EC2 extensions)."""
    ec2 = ec2_client(sim, retries=1)
    r = sim.ready
    sg = ec2.create_security_group(GroupName="pool-selftest", Description="x", VpcId=r["vpcId"])["GroupId"]
    made = ec2.create_network_interface(
        SubnetId=r["subnetId"], Groups=[sg], Description="aws-K8S-" + r["instanceId"],
        TagSpecifications=[{"ResourceType": "network-interface",
                            "Tags": [{"Key": "node.k8s.amazonaws.com/instance_id", "Value": r["instanceId"]}]}])["NetworkInterface"]
    eni = made["NetworkInterfaceId"]
    check(made["Description"] == "aws-K8S-" + r["instanceId"] and [g["GroupId"] for g in made["Groups"]] == [sg],
          "CreateNetworkInterface keeps description and security groups")
    # m5.large: 3 interfaces; the primary and the trunk hold two.
    expect_error("InvalidParameterValue", "attach at a device index in use",
                 lambda: ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=r["instanceId"], DeviceIndex=1))
    attachment = ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=r["instanceId"], DeviceIndex=2)["AttachmentId"]
    extra = ec2.create_network_interface(SubnetId=r["subnetId"])["NetworkInterface"]["NetworkInterfaceId"]
    expect_error("AttachmentLimitExceeded", "a fourth interface on an m5.large",
                 lambda: ec2.attach_network_interface(NetworkInterfaceId=extra, InstanceId=r["instanceId"], DeviceIndex=3))
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni,
                                           Attachment={"AttachmentId": attachment, "DeleteOnTermination": True})
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    check(described["Attachment"]["DeleteOnTermination"] is True, "DeleteOnTermination set through ModifyNetworkInterfaceAttribute")
    check({t["Key"]: t["Value"] for t in described["TagSet"]} == {"node.k8s.amazonaws.com/instance_id": r["instanceId"]},
          "tags from TagSpecifications")
    assigned = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=3)["AssignedPrivateIpAddresses"]
    check(len(assigned) == 3, f"AssignPrivateIpAddresses answers the 3 it assigned: {assigned}")
    everyone = [a["PrivateIpAddress"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"] for a in e["PrivateIpAddresses"]]
    check(len(everyone) == len(set(everyone)), "no address is on two interfaces")
    expect_error("PrivateIpAddressLimitExceeded", "beyond 10 addresses on an m5.large interface",
                 lambda: ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=7))
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=[assigned[0]["PrivateIpAddress"]])
    left = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["PrivateIpAddresses"]
    check(len(left) == 3, "unassigned one of four")
    prefixes = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=2)["AssignedIpv4Prefixes"]
    check(len(prefixes) == 2 and all(p["Ipv4Prefix"].endswith("/28") for p in prefixes), f"two /28 prefixes delegated: {prefixes}")
    listed = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0].get("Ipv4Prefixes", [])
    check(sorted(p["Ipv4Prefix"] for p in listed) == sorted(p["Ipv4Prefix"] for p in prefixes), f"DescribeNetworkInterfaces lists them: {listed}")
    expect_error("PrivateIpAddressLimitExceeded", "prefixes count as address slots",
                 lambda: ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=6))
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=[prefixes[0]["Ipv4Prefix"]])
    listed = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0].get("Ipv4Prefixes", [])
    check([p["Ipv4Prefix"] for p in listed] == [prefixes[1]["Ipv4Prefix"]], f"one prefix taken back: {listed}")
    expect_error("InvalidNetworkInterface.InUse", "delete while attached", lambda: ec2.delete_network_interface(NetworkInterfaceId=eni))
    ec2.detach_network_interface(AttachmentId=attachment)
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_network_interface(NetworkInterfaceId=extra)
    check(sim(cmd="state")["enis"][-1]["eniId"] == trunk["eniId"], "the instance has its ENIs as before")


def test_fixed_addresses():
    """--primary-ip and --secondary-ip: the node's address, and addresses its primary ENI already
    holds, chosen by the caller (the demo names its regular pod's address in its VPC file)."""
    sim = Sim("--primary-ip", "10.0.0.10", "--secondary-ip", "10.0.0.20", "--secondary-ip", "10.0.0.21")
    try:
        check(sim.ready["primaryEni"]["ip"] == "10.0.0.10", "--primary-ip is the primary ENI's address")
        ec2 = ec2_client(sim)
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[sim.ready["primaryEni"]["eniId"]])["NetworkInterfaces"][0]
        held = sorted(a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"] if not a["Primary"])
        check(held == ["10.0.0.20", "10.0.0.21"], f"--secondary-ip addresses are the primary ENI's in EC2: {held}")
        imds = Imds(sim.ready["imds"])
        token = imds.token()[1]
        ips = imds.get(f"network/interfaces/macs/{sim.ready['primaryEni']['mac']}/local-ipv4s", token)[1]
        check(ips.split() == ["10.0.0.10", "10.0.0.20", "10.0.0.21"], f"and in instance metadata: {ips!r}")
    finally:
        sim.close()


def main():
    sim = Sim()
    try:
        test_ready(sim)
        trunk = test_ec2_interface_type(sim)
        token = test_imds_rules(sim)
        test_imds_network(sim, token, trunk)
        test_sdk_clients(sim)
        test_container_credentials(sim)
        test_imds_faults(sim)
        test_ec2_faults_and_recording(sim)
        test_sts(sim)
        test_protocol_errors(sim)
        test_pool_calls(sim, trunk)
        test_fixed_addresses()
    except Exception:
        print(f"FAILED after {len(CHECKS)} checks; last: {CHECKS[-1] if CHECKS else '-'}", file=sys.stderr)
        sim.proc.kill()
        raise
    code, stop_seconds = sim.close()
    check(code == 0 and stop_seconds < 5, f"exits 0 on stdin EOF ({code}, {stop_seconds:.2f}s)")
    print(f"cloud-sim self-check OK: {len(CHECKS)} checks; ready in {sim.start_seconds:.2f}s, "
          f"exit in {stop_seconds:.2f}s")


if __name__ == "__main__":
    main()
