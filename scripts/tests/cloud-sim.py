#!/usr/bin/env python3
"""cloud-sim: one process that plays "the AWS cloud" for the node agent's tests.

It serves, on ephemeral ports of --host (default 127.0.0.1), from ONE in-memory moto model:

  * EC2 + STS query API (the "ec2" URL). This is REAL moto 5.2.1: its own werkzeug/Flask server
    app (moto.moto_server.werkzeug_app.DomainDispatcherApplication) runs in this process, so the
    model it mutates is the very backend object the IMDS below reads
    (moto.backends.get_backend("ec2")[DEFAULT_ACCOUNT_ID][region]).
  * An instance metadata service (the "imds" URL) and an EKS Pod Identity style container
    credentials endpoint (GET /v1/credentials on the same port). Moto has no stand-alone IMDS
    with IMDSv2 tokens, so this is the harness's own http.server, following AWS's documented
    IMDSv2 rules; every answer is computed from the moto model at request time.

What the harness adds to moto, and why:
  * Interface type. Moto stores every ENI with interface_type "interface" and ignores the
    InterfaceType parameter of CreateNetworkInterface. Trunk ENIs matter here (branch ENIs hang
    off a trunk), so `create_eni type=trunk` sets the model's interface_type and
    CreateNetworkInterface honours InterfaceType. No response template needs patching: moto 5.2
    serializes DescribeNetworkInterfaces from the botocore shape, which already reads the model's
    interface_type into <interfaceType>. `warm_and_check` asserts this at start,
    so a moto upgrade that drops it fails loudly instead of silently.
  * Routing. Moto's dispatcher infers the service of an unsigned request from its Action with a
    naive body split that fails on values containing "=" and then falls back to S3; the harness
    routes unsigned STS actions to STS itself (and any other unsigned query call to EC2).
  * Fault injection, request counters and a copy of the last EC2/STS request, by wrapping moto's
    WSGI app (EC2) and inside the IMDS handler.
  * One account: MOTO_ACCOUNT_ID is pinned to moto's default account so that whatever access key
    a client signs with (IMDS role, Pod Identity, assumed role) it sees the same model.

Protocol (see the cloud-sim interface contract): on start ONE JSON "ready" line on stdout, then
one JSON command per stdin line and one JSON answer line for each; exit on stdin EOF. stdout
carries nothing else: sys.stdout is pointed at stderr so stray prints (moto has some) cannot
corrupt the protocol.

Beyond the contract (all optional, nothing in the contract changes):
  * commands: ec2_fault "action" (only that Action consumes the fault), "message", "delay";
    imds_fault "path" (only requests whose path starts with it); create_eni "subnetId";
    add_vpc_cidr "vpcId" and its answer's "associationId"/"vpcCidrs"; -v/--verbose logs requests;
    --instance-type (m5.large by default), --primary-ip, --secondary-ip; state lists each ENI's secondary "ipv4Addresses".
  * IMDS also serves ami-id, instance-type, hostname, local-hostname, iam/info, per-MAC
    owner-id and security-group-ids, and /latest/dynamic/instance-identity/document.
  * Credentials are fixed strings (NODE_CREDS for the IMDS role, POD_CREDS for Pod Identity) so a
    test can tell from a request's signature which one a client used.
  * last_ec2_request headers are keyed in Title-Case ("Authorization", "X-Amz-Date", ...);
    before any EC2/STS request it answers ok=false.
  * moto does not check signatures, and an unsigned non-STS query call is answered by EC2.
"""
import argparse
import io
import ipaddress
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Keep the protocol channel private before moto (which prints) is imported.
PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr

from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402

# Every request sees the one model, whatever access key signed it.
os.environ["MOTO_ACCOUNT_ID"] = DEFAULT_ACCOUNT_ID

from moto.backends import get_backend  # noqa: E402
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402
from werkzeug.test import Client  # noqa: E402

ROLE = "node-role"
IMAGE_ID = "ami-12c6146b"
INSTANCE_TYPE = "m5.large"  # a type that supports trunk ENIs, like the real nodes
DEFAULT_CONTAINER_TOKEN = "pod-identity-token"
MAX_TTL = 21600
TOKEN_PATH = "/latest/api/token"
CONTAINER_PATH = "/v1/credentials"
# Fixed keys so tests can tell from a signature which credentials a client used.
NODE_CREDS = ("ASIANODEROLE00000001", "node-role-secret-key-0000000000000000000", "node-role-session-token")
POD_CREDS = ("ASIAPODIDENTITY00001", "pod-identity-secret-key-000000000000000", "pod-identity-session-token")
STS_ACTIONS = {
    "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "DecodeAuthorizationMessage",
    "GetAccessKeyInfo", "GetCallerIdentity", "GetFederationToken", "GetSessionToken",
}
EC2_ERROR_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "Throttling": "Rate exceeded",
    "InternalError": "An internal error has occurred",
}

log = logging.getLogger("cloud-sim")


def iso_z(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc():
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------------------------
# Shared harness state: counters, faults, tokens, each behind its own small lock.


class Faults:
    """A count-limited fault: the next `count` matching requests get it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spec = None
        self.count = 0

    def set(self, count, spec):
        with self.lock:
            self.count = max(0, int(count))
            self.spec = spec if self.count else None

    def take(self, matches):
        """Consume one fault if `matches(spec)`; returns the spec or None."""
        with self.lock:
            if self.count <= 0 or not matches(self.spec):
                return None
            self.count -= 1
            return self.spec


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.imds, self.ec2, self.container = {}, {}, 0

    def bump_imds(self, key):
        with self.lock:
            self.imds[key] = self.imds.get(key, 0) + 1

    def bump_ec2(self, action):
        with self.lock:
            self.ec2[action] = self.ec2.get(action, 0) + 1

    def bump_container(self):
        with self.lock:
            self.container += 1

    def snapshot(self):
        with self.lock:
            return {"imds": dict(self.imds), "ec2": dict(self.ec2), "containerCredentials": self.container}

    def zero(self):
        with self.lock:
            self.reset()


class Tokens:
    """IMDSv2 session tokens: token -> monotonic expiry."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}

    def issue(self, ttl):
        token = secrets.token_urlsafe(42)
        with self.lock:
            self.live[token] = time.monotonic() + ttl
        return token

    def valid(self, token):
        with self.lock:
            expiry = self.live.get(token or "")
            return expiry is not None and time.monotonic() < expiry

    def expire_all(self):
        with self.lock:
            self.live.clear()


# ---------------------------------------------------------------------------------------------
# The model: a thin view over moto's EC2 backend. MODEL_LOCK serializes moto requests, commands and
# IMDS reads, because moto's dicts are not safe to iterate while another thread mutates them.

MODEL_LOCK = threading.RLock()


class Model:
    def __init__(self, region, instance_type=INSTANCE_TYPE, primary_ip=None, secondary_ips=()):
        self.region = region
        self.az = region + "a"
        self.ec2 = get_backend("ec2")[DEFAULT_ACCOUNT_ID][region]
        self.started = now_utc()
        vpc = self.ec2.create_vpc(cidr_block="10.0.0.0/16")
        subnet = self.ec2.create_subnet(vpc.id, "10.0.0.0/19", availability_zone=self.az)
        reservation = self.ec2.run_instances(
            IMAGE_ID, 1, None, [], instance_type=instance_type, is_instance_type_default=False,
            region_name=region, subnet_id=subnet.id, nics=[], private_ip=primary_ip)
        self.vpc_id, self.subnet_id = vpc.id, subnet.id
        self.instance_id = reservation.instances[0].id
        if secondary_ips:
            # Addresses EC2 gave the primary ENI before the node agent started (as after a
            # restart of aws-node): a demo can name a regular pod's address in advance.
            self.ec2.assign_private_ip_addresses(self.attached()[0][1].id, list(secondary_ips))

    # --- reads --------------------------------------------------------------------------------

    def instance(self):
        return self.ec2.get_instance(self.instance_id)

    def attached(self):
        """(device index, ENI) of the instance, by device index."""
        return sorted(self.instance().nics.items())

    def vpc_cidrs(self, vpc_id):
        """Associated IPv4 CIDRs of a VPC, primary first (moto keeps association order)."""
        vpc = self.ec2.get_vpc(vpc_id)
        blocks = [a["cidr_block"] for a in vpc.cidr_block_association_set
                  if a.get("cidr_block_state", {}).get("state") == "associated"]
        return sorted(blocks, key=lambda c: c != vpc.cidr_block)

    @staticmethod
    def eni_view(index, eni):
        return {"eniId": eni.id, "mac": eni.mac_address, "ip": eni.private_ip_address,
                "deviceIndex": index, "interfaceType": eni.interface_type,
                "ipv4Prefixes": [p["Ipv4Prefix"] for p in getattr(eni, "ipv4_prefixes", None) or []],
                "ipv4Addresses": [a["PrivateIpAddress"] for a in eni.private_ip_addresses
                                  if a["PrivateIpAddress"] != eni.private_ip_address]}

    def ready_fields(self, urls):
        primary = self.eni_view(*self.attached()[0])
        primary.pop("interfaceType")
        primary.pop("ipv4Prefixes")
        primary.pop("ipv4Addresses")
        subnet = self.ec2.get_subnet(self.subnet_id)
        return {**urls, "region": self.region, "availabilityZone": self.az,
                "instanceId": self.instance_id, "vpcId": self.vpc_id,
                "vpcCidr": self.ec2.get_vpc(self.vpc_id).cidr_block,
                "subnetId": self.subnet_id, "subnetCidr": subnet.cidr_block,
                "primaryEni": primary, "role": ROLE}

    def state(self, urls):
        return {**self.ready_fields(urls),
                "enis": [self.eni_view(i, e) for i, e in self.attached()],
                "vpcCidrs": self.vpc_cidrs(self.vpc_id)}

    # --- changes ------------------------------------------------------------------------------

    def create_eni(self, kind, attach, subnet_id=None):
        if kind not in ("trunk", "interface", "efa", "branch"):
            raise ValueError(f"unknown ENI type {kind!r}")
        subnet = self.ec2.get_subnet(subnet_id or self.subnet_id)
        eni = self.ec2.create_network_interface(subnet, None)
        eni.interface_type = kind  # the harness's extension: moto always says "interface"
        index = None
        if attach:
            used = set(self.instance().nics)
            index = next(i for i in range(1, 64) if i not in used)
            self.ec2.attach_network_interface(eni.id, self.instance_id, index)
        return {"eniId": eni.id, "mac": eni.mac_address, "ip": eni.private_ip_address,
                "deviceIndex": index}

    def detach_eni(self, eni_id):
        eni = self.ec2.get_network_interface(eni_id)
        if not eni.attachment_id:
            raise ValueError(f"{eni_id} is not attached")
        if eni.device_index == 0:
            raise ValueError("the primary network interface cannot be detached")
        self.ec2.detach_network_interface(eni.attachment_id)

    def add_vpc_cidr(self, cidr, vpc_id=None):
        vpc_id = vpc_id or self.vpc_id
        ipaddress.IPv4Network(cidr)  # reject junk before moto stores it
        assoc = self.ec2.associate_vpc_cidr_block(vpc_id, cidr, False)
        return {"associationId": assoc["association_id"], "vpcCidrs": self.vpc_cidrs(vpc_id)}

    # --- IMDS tree ----------------------------------------------------------------------------

    def mac_tree(self, index, eni):
        subnet, vpc = eni.subnet, self.ec2.get_vpc(eni.vpc_id)
        ips = [eni.private_ip_address] + [a["PrivateIpAddress"] for a in eni.private_ip_addresses
                                          if a["PrivateIpAddress"] != eni.private_ip_address]
        return {
            "device-number": str(index),
            "interface-id": eni.id,
            "local-ipv4s": "\n".join(ips),
            "mac": eni.mac_address,
            "network-card": "0",
            "owner-id": DEFAULT_ACCOUNT_ID,
            "security-group-ids": "\n".join(g.id for g in eni.group_set),
            "subnet-id": subnet.id,
            "subnet-ipv4-cidr-block": subnet.cidr_block,
            "vpc-id": vpc.id,
            "vpc-ipv4-cidr-block": vpc.cidr_block,
            "vpc-ipv4-cidr-blocks": "\n".join(self.vpc_cidrs(vpc.id)),
        }

    def imds_tree(self):
        inst = self.instance()
        nics = self.attached()
        primary = dict(nics)[0]
        return {
            "ami-id": inst.image_id,
            "hostname": inst.private_dns_name,
            "iam": {"info": json.dumps(self.iam_info()),
                    "security-credentials": {ROLE: json.dumps(self.node_credentials())}},
            "instance-id": inst.id,
            "instance-type": inst.instance_type,
            "local-hostname": inst.private_dns_name,
            "local-ipv4": primary.private_ip_address,
            "mac": primary.mac_address,
            "network": {"interfaces": {"macs": {e.mac_address: self.mac_tree(i, e) for i, e in nics}}},
            "placement": {"availability-zone": self.az, "region": self.region},
        }

    def identity_document(self):
        inst = self.instance()
        return {"accountId": DEFAULT_ACCOUNT_ID, "architecture": "x86_64",
                "availabilityZone": self.az, "imageId": inst.image_id, "instanceId": inst.id,
                "instanceType": inst.instance_type, "pendingTime": iso_z(self.started),
                "privateIp": inst.private_ip_address, "region": self.region, "version": "2017-09-30"}

    def iam_info(self):
        return {"Code": "Success", "LastUpdated": iso_z(self.started),
                "InstanceProfileArn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:instance-profile/{ROLE}",
                "InstanceProfileId": "AIPAHARNESSPROFILE01"}

    def node_credentials(self):
        key, secret, token = NODE_CREDS
        return {"Code": "Success", "LastUpdated": iso_z(self.started), "Type": "AWS-HMAC",
                "AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                "Expiration": iso_z(now_utc() + timedelta(hours=1))}


def pod_credentials():
    key, secret, token = POD_CREDS
    return {"AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
            "AccountId": DEFAULT_ACCOUNT_ID, "Expiration": iso_z(now_utc() + timedelta(hours=1))}


# ---------------------------------------------------------------------------------------------
# Moto extensions (in this process only; site-packages is untouched).


def patch_create_network_interface():
    """CreateNetworkInterface honours InterfaceType (moto drops it)."""
    original = ElasticNetworkInterfaces.create_network_interface

    def create_network_interface(self):
        result = original(self)
        kind = self._get_param("InterfaceType")
        if kind:
            result.result["NetworkInterface"].interface_type = kind
        return result

    ElasticNetworkInterfaces.create_network_interface = create_network_interface


def patch_pool_calls():
    """What real EC2 does and moto does not, for the regular-pod pool (issue 14):
    * addresses are unique in the subnet (moto draws them at random, and two ENIs' addresses can
      collide), and AssignPrivateIpAddresses answers with the addresses it assigned, not all of
      the ENI's;
    * the instance type's limits: MaximumNetworkInterfaces (AttachmentLimitExceeded), a device
      index already in use (InvalidParameterValue) and Ipv4AddressesPerInterface
      (PrivateIpAddressLimitExceeded), from moto's own DescribeInstanceTypes data;
    * ModifyNetworkInterfaceAttribute honours Attachment.DeleteOnTermination, shown back by
      DescribeNetworkInterfaces; an ENI still attached cannot be deleted (InvalidNetworkInterface.InUse);
    * prefix delegation: AssignPrivateIpAddresses with Ipv4PrefixCount delegates aligned /28s that
      hold no address in use (each one of the interface's address slots), answered in
      AssignedIpv4Prefixes and listed in DescribeNetworkInterfaces' ipv4PrefixSet;
      UnassignPrivateIpAddresses with Ipv4Prefix.N takes them back."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
    from moto.ec2.models.instance_types import INSTANCE_TYPES
    from moto.ec2.models.instances import Instance

    def network_info(instance):
        return INSTANCE_TYPES[instance.instance_type]["NetworkInfo"]

    def prefixes_of(eni):
        return [p["Ipv4Prefix"] for p in getattr(eni, "ipv4_prefixes", None) or []]

    def used_in_subnet(backend, subnet_id):
        enis = [e for e in backend.enis.values() if e.subnet.id == subnet_id]
        used = {a["PrivateIpAddress"] for e in enis for a in e.private_ip_addresses} | {e.private_ip_address for e in enis}
        for e in enis:
            for p in prefixes_of(e):
                used |= {str(ip) for ip in ipaddress.IPv4Network(p)}
        return used

    def free_prefixes(backend, subnet, count):
        used = {ipaddress.IPv4Address(a) for a in used_in_subnet(backend, subnet.id) if a}
        net = ipaddress.IPv4Network(subnet.cidr_block)
        # The first /28 holds the addresses AWS reserves.
        candidates = [p for p in list(net.subnets(new_prefix=28))[1:] if not any(a in p for a in used)]
        if len(candidates) < count:
            raise EC2ClientError("InsufficientCidrBlocks", f"The specified subnet {subnet.id} does not have enough free cidr blocks")
        return [str(p) for p in candidates[:count]]

    def slots_used(eni):
        return len(eni.private_ip_addresses) + len(prefixes_of(eni))

    def free_addresses(backend, subnet, count):
        used = used_in_subnet(backend, subnet.id)
        net = ipaddress.IPv4Network(subnet.cidr_block)
        hosts = list(net.hosts())[3:]  # AWS reserves the first four addresses (and the last)
        picked = [str(ip) for ip in hosts if str(ip) not in used][:count]
        if len(picked) < count:
            raise EC2ClientError("InsufficientFreeAddressesInSubnet",
                                 f"The specified subnet {subnet.id} has insufficient free addresses")
        return picked

    original_create = NetworkInterfaceBackend.create_network_interface

    def create_network_interface(self, subnet, private_ip_address, private_ip_addresses=None, *args, **kwargs):
        if not private_ip_address and not private_ip_addresses:
            sub = self.get_subnet(subnet) if isinstance(subnet, str) else subnet
            private_ip_address = free_addresses(self, sub, 1)[0]
        return original_create(self, subnet, private_ip_address, private_ip_addresses, *args, **kwargs)

    def assign_private_ip_addresses(self, eni_id, private_ip_addresses=None, secondary_ips_count=None):
        eni = self.get_network_interface(eni_id)
        if eni.instance is not None:
            limit = network_info(eni.instance)["Ipv4AddressesPerInterface"]
            wanted = len(private_ip_addresses or []) or int(secondary_ips_count or 0)
            if slots_used(eni) + wanted > limit:
                raise EC2ClientError("PrivateIpAddressLimitExceeded",
                                     f"Number of private addresses will exceed limit ({limit}) for {eni_id}")
        new = list(private_ip_addresses or []) or free_addresses(self, eni.subnet, int(secondary_ips_count or 0))
        eni.private_ip_addresses.extend({"Primary": False, "PrivateIpAddress": ip} for ip in new)
        eni.harness_last_assigned = new
        return eni

    def attach_eni(self, eni, device_index):
        device_index = int(device_index)
        limit = network_info(self)["MaximumNetworkInterfaces"]
        if device_index in self.nics:
            raise EC2ClientError("InvalidParameterValue",
                                 f"Instance '{self.id}' already has an interface attached at device index '{device_index}'.")
        if len(self.nics) >= limit:
            raise EC2ClientError("AttachmentLimitExceeded",
                                 f"Interface count {len(self.nics) + 1} exceeds the limit for {self.instance_type}")
        eni.delete_on_termination = False
        return original_attach(self, eni, device_index)

    original_attach = Instance.attach_eni
    original_delete = NetworkInterfaceBackend.delete_network_interface

    def delete_network_interface(self, eni_id):
        eni = self.enis.get(eni_id)
        if eni is not None and eni.instance is not None:
            raise EC2ClientError("InvalidNetworkInterface.InUse", f"Interface: [{eni_id}] in use.")
        return original_delete(self, eni_id)

    NetworkInterfaceBackend.create_network_interface = create_network_interface
    NetworkInterfaceBackend.assign_private_ip_addresses = assign_private_ip_addresses
    NetworkInterfaceBackend.delete_network_interface = delete_network_interface
    Instance.attach_eni = attach_eni

    original_assign_response = ElasticNetworkInterfaces.assign_private_ip_addresses

    def assign_response(self):
        count = self._get_int_param("Ipv4PrefixCount", 0)
        if count:
            from moto.core.responses import ActionResult
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            if eni.instance is not None:
                limit = network_info(eni.instance)["Ipv4AddressesPerInterface"]
                if slots_used(eni) + count > limit:
                    raise EC2ClientError("PrivateIpAddressLimitExceeded",
                                         f"Number of private addresses will exceed limit ({limit}) for {eni.id}")
            new = [{"Ipv4Prefix": p} for p in free_prefixes(self.ec2_backend, eni.subnet, count)]
            eni.ipv4_prefixes = (getattr(eni, "ipv4_prefixes", None) or []) + new
            return ActionResult({"NetworkInterfaceId": eni.id, "AssignedIpv4Prefixes": new, "AssignedPrivateIpAddresses": []})
        result = original_assign_response(self)
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        result.result["AssignedPrivateIpAddresses"] = [
            {"PrivateIpAddress": ip} for ip in getattr(eni, "harness_last_assigned", [])]
        return result

    original_modify_response = ElasticNetworkInterfaces.modify_network_interface_attribute

    def modify_response(self):
        attachment = self._get_param("Attachment.AttachmentId")
        if attachment:
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            if eni.attachment_id != attachment:
                raise EC2ClientError("InvalidAttachmentID.NotFound", f"Attachment {attachment} is not {eni.id}'s")
            eni.delete_on_termination = self._get_param("Attachment.DeleteOnTermination") in ("true", True)
        return original_modify_response(self)

    original_unassign_response = ElasticNetworkInterfaces.unassign_private_ip_addresses

    def unassign_response(self):
        prefixes = self._get_param("Ipv4Prefixes", [])
        if prefixes:
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            eni.ipv4_prefixes = [p for p in (getattr(eni, "ipv4_prefixes", None) or []) if p["Ipv4Prefix"] not in prefixes]
            if not self._get_param("PrivateIpAddresses", []):
                from moto.core.responses import EmptyResult
                return EmptyResult()
        return original_unassign_response(self)

    ElasticNetworkInterfaces.unassign_private_ip_addresses = unassign_response
    ElasticNetworkInterfaces.assign_private_ip_addresses = assign_response
    ElasticNetworkInterfaces.modify_network_interface_attribute = modify_response


def warm_and_check(app, model):
    """Warm moto's EC2 and STS apps (the first request builds them) and assert that moto renders
    the model's interface_type as <interfaceType>: if an upgrade stops doing so, fail at start."""
    primary = model.attached()[0][1].id
    probe = signed_test_request(app, model.region, "ec2",
                                "Action=DescribeNetworkInterfaces&Version=2016-11-15"
                                f"&NetworkInterfaceId.1={primary}")
    xml = probe.get_data(as_text=True)
    if probe.status_code != 200 or "<interfaceType>interface</interfaceType>" not in xml:
        raise RuntimeError(f"moto does not render interfaceType: {probe.status_code} {xml[:500]}")
    probe = signed_test_request(app, model.region, "sts", "Action=GetCallerIdentity&Version=2011-06-15")
    if probe.status_code != 200:
        raise RuntimeError(f"moto STS probe failed: {probe.status_code}")


def signed_test_request(app, region, service, body):
    """A request to the moto app as a SigV4 client sends it (moto does not verify signatures)."""
    auth = (f"AWS4-HMAC-SHA256 Credential=AKIDHARNESS000000000/20240101/{region}/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0")
    with MODEL_LOCK:
        return Client(app).post("/", data=body, headers={
            "Authorization": auth, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


# ---------------------------------------------------------------------------------------------
# EC2 / STS front: moto's dispatcher, with better routing, wrapped by faults/counters/recording.


def form_params(environ, body):
    params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
    return params


class Dispatcher(DomainDispatcherApplication):
    """Moto's dispatcher; unsigned query calls go to STS (STS actions) or EC2 (all others)."""

    def __init__(self, region):
        super().__init__(create_backend_app)
        self.region = region

    def infer_service_region_host(self, environ, path):
        if environ.get("HTTP_AUTHORIZATION"):
            return super().infer_service_region_host(environ, path)
        action = environ.get("cloudsim.action")
        if action in STS_ACTIONS:
            return "sts.us-east-1.amazonaws.com"
        if action:
            return f"ec2.{self.region}.amazonaws.com"
        return super().infer_service_region_host(environ, path)


def title_header(key):
    return "-".join(part.capitalize() for part in key.split("_"))


def request_headers(environ):
    headers = {title_header(k[5:]): v for k, v in environ.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[title_header(key)] = environ[key]
    return headers


def read_body(environ):
    """Read the whole body and put it back, so moto reads it again."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated") or environ.get("HTTP_TRANSFER_ENCODING"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def ec2_error(start_response, status, code, message):
    xml = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
           f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
           f"<RequestID>{uuid.uuid4()}</RequestID></Response>").encode()
    start_response(f"{status} {status_reason(status)}",
                   [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(xml)))])
    return [xml]


def status_reason(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Ec2Front:
    """WSGI middleware in front of moto: count, record, maybe fault, else let moto answer."""

    def __init__(self, dispatcher, counters, faults):
        self.dispatcher, self.counters, self.faults = dispatcher, counters, faults
        self.last = None
        self.last_lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = read_body(environ)
        action = (form_params(environ, body).get("Action") or [""])[0]
        environ["cloudsim.action"] = action
        self.record(environ, body)
        self.counters.bump_ec2(action or "(none)")
        fault = self.faults.take(lambda spec: spec.get("action") in (None, action))
        if fault:
            time.sleep(fault.get("delay", 0))
            log.info("ec2 fault %s -> %s %s", action, fault["status"], fault["code"])
            return ec2_error(start_response, fault["status"], fault["code"], fault["message"])
        with MODEL_LOCK:
            return list(self.dispatcher(environ, start_response))

    def record(self, environ, body):
        path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        last = {"method": environ["REQUEST_METHOD"], "path": path,
                "headers": request_headers(environ), "body": body.decode("utf-8", "replace")}
        with self.last_lock:
            self.last = last


# ---------------------------------------------------------------------------------------------
# IMDS + container credentials (http.server): IMDSv2 as AWS documents it.


class ImdsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: with Nagle on, each keep-alive answer waits for
    # the client's delayed ACK (about 40 ms), which real IMDS does not add.
    disable_nagle_algorithm = True
    server_version = "EC2ws"
    sys_version = ""
    sim = None  # the Sim, set on the server class

    def log_message(self, fmt, *args):
        log.debug("imds %s", fmt % args)

    def do_any(self):
        path = urllib.parse.urlsplit(self.path).path
        self.drain_body()
        if path == CONTAINER_PATH:
            return self.container_credentials()
        self.sim.counters.bump_imds(f"{self.command} {path}")
        fault = self.sim.imds_faults.take(lambda spec: path.startswith(spec.get("path") or ""))
        if fault:
            time.sleep(fault.get("delay", 0))
            if fault.get("status"):
                return self.reply(fault["status"], status_reason(fault["status"]))
        if path == TOKEN_PATH:
            return self.token()
        if self.command not in ("GET", "HEAD"):
            return self.reply(405, "Method Not Allowed")
        if not self.sim.tokens.valid(self.headers.get("X-aws-ec2-metadata-token")):
            return self.reply(401, "Unauthorized")
        return self.metadata(path)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_any

    def drain_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def token(self):
        if self.command != "PUT":
            return self.reply(405, "Method Not Allowed", [("Allow", "OPTIONS, PUT")])
        if self.headers.get("X-Forwarded-For") is not None:
            return self.reply(403, "Forbidden")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.strip().isdigit() or not 1 <= int(ttl) <= MAX_TTL:
            return self.reply(400, "Bad Request")
        token = self.sim.tokens.issue(int(ttl))
        return self.reply(200, token, [("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", str(int(ttl)))])

    def metadata(self, path):
        with MODEL_LOCK:
            answer = self.sim.imds_answer(path)
        if answer is None:
            return self.reply(404, "Not Found")
        return self.reply(200, answer)

    def container_credentials(self):
        self.sim.counters.bump_container()
        if self.command != "GET":
            return self.reply(405, "Method Not Allowed")
        if self.headers.get("Authorization") != self.sim.container_token:
            return self.reply(401, "Unauthorized")
        return self.reply(200, json.dumps(pod_credentials()), content_type="application/json")

    def reply(self, status, text, headers=(), content_type="text/plain"):
        if status >= 400:
            text = error_page(status, text)
            content_type = "text/html"
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def error_page(status, reason):
    """IMDS's own error body shape."""
    return ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
            '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
            f" <head>\n  <title>{status} - {reason}</title>\n </head>\n"
            f" <body>\n  <h1>{status} - {reason}</h1>\n </body>\n</html>\n")


def resolve(tree, parts):
    """Walk the metadata tree: a dict answers its listing ("name/" for sub-dicts), a str itself."""
    node = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        return "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items())
    return node


class ImdsServer(ThreadingHTTPServer):
    daemon_threads = True


# ---------------------------------------------------------------------------------------------
# The simulator: servers + control commands.


class Sim:
    def __init__(self, host, region, instance_type=INSTANCE_TYPE, primary_ip=None, secondary_ips=()):
        self.counters, self.tokens = Counters(), Tokens()
        self.ec2_faults, self.imds_faults = Faults(), Faults()
        self.container_token = DEFAULT_CONTAINER_TOKEN
        patch_create_network_interface()
        patch_pool_calls()
        self.model = Model(region, instance_type, primary_ip, secondary_ips)
        self.dispatcher = Dispatcher(region)
        self.front = Ec2Front(self.dispatcher, self.counters, self.ec2_faults)
        self.ec2_server = make_server(host, 0, self.front, threaded=True)
        handler = type("Handler", (ImdsHandler,), {"sim": self})
        ImdsServer.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.imds_server = ImdsServer((host, 0), handler)
        self.urls = self.make_urls(host)

    def make_urls(self, host):
        shown = f"[{host}]" if ":" in host else host
        ec2 = f"http://{shown}:{self.ec2_server.server_port}"
        imds = f"http://{shown}:{self.imds_server.server_address[1]}"
        return {"ec2": ec2, "imds": imds, "containerCredentials": imds + CONTAINER_PATH}

    def start(self):
        for server in (self.ec2_server, self.imds_server):
            # A short poll interval makes shutdown() on stdin EOF quick.
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        # Warm moto's EC2/STS Flask apps now so the first client call is not the slow one.
        warm_and_check(self.dispatcher, self.model)
        for url in (self.urls["ec2"], self.urls["imds"]):
            wait_accepting(url)

    def stop(self):
        for server in (self.ec2_server, self.imds_server):
            server.shutdown()
            server.server_close()

    def imds_answer(self, path):
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["latest", "meta-data"]:
            return resolve(self.model.imds_tree(), parts[2:])
        if parts == ["latest", "dynamic", "instance-identity", "document"]:
            return json.dumps(self.model.identity_document(), indent=2)
        return None

    # --- control commands ---------------------------------------------------------------------

    def command(self, msg):
        handler = getattr(self, "cmd_" + str(msg.get("cmd")), None)
        if handler is None:
            return {"ok": False, "error": f"unknown cmd {msg.get('cmd')!r}"}
        try:
            with MODEL_LOCK:
                return {"ok": True, **(handler(msg) or {})}
        except Exception as err:  # the answer must always be one JSON line
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}

    def cmd_state(self, msg):
        return self.model.state(self.urls)

    def cmd_create_eni(self, msg):
        return self.model.create_eni(msg.get("type", "interface"), msg.get("attach", True),
                                     msg.get("subnetId"))

    def cmd_detach_eni(self, msg):
        self.model.detach_eni(msg["eniId"])

    def cmd_add_vpc_cidr(self, msg):
        return self.model.add_vpc_cidr(msg["cidr"], msg.get("vpcId"))

    def cmd_imds_fault(self, msg):
        spec = {"status": int(msg.get("status", 0)), "delay": float(msg.get("delay", 0)),
                "path": msg.get("path")}
        self.imds_faults.set(msg.get("count", 1), spec)

    def cmd_ec2_fault(self, msg):
        code = msg.get("code", "InternalError")
        spec = {"code": code, "status": int(msg.get("status", 500)),
                "message": msg.get("message") or EC2_ERROR_MESSAGES.get(code, code),
                "delay": float(msg.get("delay", 0)), "action": msg.get("action")}
        self.ec2_faults.set(msg.get("count", 1), spec)

    def cmd_expire_tokens(self, msg):
        self.tokens.expire_all()

    def cmd_requests(self, msg):
        return self.counters.snapshot()

    def cmd_reset_counts(self, msg):
        self.counters.zero()

    def cmd_last_ec2_request(self, msg):
        with self.front.last_lock:
            last = self.front.last
        if last is None:
            raise LookupError("no EC2/STS request received yet")
        return dict(last)

    def cmd_container_token(self, msg):
        self.container_token = str(msg["token"])


def wait_accepting(url, timeout=10.0):
    parsed = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((parsed.hostname, parsed.port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def emit(obj):
    PROTOCOL_OUT.write(json.dumps(obj) + "\n")
    PROTOCOL_OUT.flush()


def serve_commands(sim):
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("a command is a JSON object")
        except ValueError as err:
            emit({"ok": False, "error": f"bad command: {err}"})
            continue
        emit(sim.command(msg))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--region", default="us-west-2")
    parser.add_argument("--instance-type", default=INSTANCE_TYPE,
                        help="the node's EC2 instance type (its ENI and address limits are moto's)")
    parser.add_argument("--primary-ip", type=ipaddress.IPv4Address,
                        help="the primary ENI's address (default: moto picks one in 10.0.0.0/19)")
    parser.add_argument("--secondary-ip", type=ipaddress.IPv4Address, action="append", default=[],
                        help="a secondary address the primary ENI already holds at start (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="cloud-sim: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    started = time.monotonic()
    sim = Sim(args.host, args.region, args.instance_type,
              str(args.primary_ip) if args.primary_ip else None, [str(a) for a in args.secondary_ip])
    sim.start()
    with MODEL_LOCK:
        ready = sim.model.ready_fields(sim.urls)
    emit(ready)
    log.info("ready in %.2fs", time.monotonic() - started)
    try:
        serve_commands(sim)
    finally:
        sim.stop()
        PROTOCOL_OUT.flush()
        sys.stderr.flush()
        # Servers are closed and output flushed; skip the interpreter's slow teardown of moto's
        # object graph (over a second) so a test's cleanup does not wait for it.
        os._exit(0)


if __name__ == "__main__":
    main()
