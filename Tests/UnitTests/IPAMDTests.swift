import Foundation
import IPAMDCore
import IPAMDProtocol
import Logging
import NetModel
import Netlink
import Testing

let podsFile = #"""
{"pods": {
  "default/db-client": [{"eniId":"eni-1","ifAddress":"0a:00:00:00:00:07","privateIp":"10.0.40.12","vlanId":7,"subnetCidr":"10.0.32.0/19"}],
  "default-ctr1": [{"eniId":"eni-2","ifAddress":"0a:00:00:00:00:08","privateIp":"10.0.40.13","vlanID":8,"subnetCidr":"10.0.32.0/19"}],
  "default/broken": [{"eniId":"eni-3","ifAddress":"0a:00:00:00:00:09","privateIp":"10.0.40.14","vlanId":0,"subnetCidr":"10.0.32.0/19"}]
}}
"""#

@Suite struct IPAMDConfigTests {
    let base = ["POD_ENI_SOURCE": "file:/tmp/pods.json", "TRUNK_INTERFACE": "eth1", "VPC_CIDRS": "10.0.0.0/16, 100.64.0.0/16"]

    @Test func parses() throws {
        let c = try IPAMDConfig.fromEnvironment(base)
        #expect(c.podENISource == .file(path: "/tmp/pods.json"))
        #expect(c.trunk == .name("eth1"))
        #expect(c.vpcCIDRs.map(\.description) == ["10.0.0.0/16", "100.64.0.0/16"])
        #expect(c.rpcSocket == "/var/run/aws-node/ipamd.sock")
        var env = base
        env["TRUNK_INTERFACE"] = "0A:1b:2c:3d:4e:5f"
        #expect(try IPAMDConfig.fromEnvironment(env).trunk == .mac(MACAddress("0a:1b:2c:3d:4e:5f")!))
    }

    @Test(arguments: [
        ("POD_ENI_SOURCE", "ftp:x"), ("POD_ENI_SOURCE", "kube"), ("TRUNK_INTERFACE", "eth 1"),
        ("TRUNK_INTERFACE", "a-very-long-interface-name"), ("VPC_CIDRS", "10.0.0.0"), ("VPC_CIDRS", "fd00::/8"),
        ("IPAMD_SOCKET", "relative"), ("AWS_VPC_K8S_CNI_EXTERNALSNAT", "maybe"), ("AWS_VPC_K8S_CNI_LOGLEVEL", "LOUD"),
        ("POD_SECURITY_GROUP_ENFORCING_MODE", "lax"),
    ])
    func rejectsNamingVariable(_ key: String, _ value: String) {
        var env = base
        env[key] = value
        #expect { try IPAMDConfig.fromEnvironment(env) } throws: { ($0 as! ConfigError).variable == key }
    }

    /// Defect 13: every invalid or missing variable in one message, each with what is accepted.
    @Test func reportsEveryProblemAtOnce() throws {
        var env = base
        env["TRUNK_INTERFACE"] = "a/b"
        env["POD_SECURITY_GROUP_ENFORCING_MODE"] = "lax"
        env["AWS_VPC_K8S_CNI_RANDOMIZESNAT"] = "always"
        env["POD_MTU"] = "9"
        env["CNI_BIN_DIR"] = "bin"
        #expect { try IPAMDConfig.fromEnvironment(env) } throws: { e in
            let c = e as! ConfigError
            return c.variables == ["TRUNK_INTERFACE", "POD_SECURITY_GROUP_ENFORCING_MODE", "AWS_VPC_K8S_CNI_RANDOMIZESNAT", "CNI_BIN_DIR", "POD_MTU"]
                && c.description.split(separator: "\n").count == 5
                && c.description.contains("POD_SECURITY_GROUP_ENFORCING_MODE: invalid value \"lax\"; accepted values: strict, standard")
                && c.description.contains("AWS_VPC_K8S_CNI_RANDOMIZESNAT: invalid value \"always\"; accepted values: prng, hashrandom, none")
        }
    }

    /// Unset overrides are discovered from the cloud (VPC CIDRs from metadata, the trunk from
    /// EC2); with all of them given, nothing is.
    @Test func unsetOverridesAreDiscovered() throws {
        var env = base
        #expect(try IPAMDConfig.fromEnvironment(env).needsDiscovery == false)
        env["VPC_CIDRS"] = nil
        let c = try IPAMDConfig.fromEnvironment(env)
        #expect(c.vpcCIDRs.isEmpty && c.needsDiscovery)
        env = base
        env["TRUNK_INTERFACE"] = nil
        env["ENABLE_POD_ENI"] = "true"
        #expect(try IPAMDConfig.fromEnvironment(env).needsDiscovery)
        env["ENABLE_POD_ENI"] = "false"
        #expect(try IPAMDConfig.fromEnvironment(env).needsDiscovery == false, "no trunk needed without pod ENI")
    }

    @Test func cloudEndpointsAreValidated() throws {
        var env = base
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "169.254.169.254"
        env["AWS_ENDPOINT_URL_EC2"] = "ftp://x"
        env["AWS_REGION"] = "US West"
        env["VPC_CIDR_REFRESH_INTERVAL"] = "1"
        #expect { try IPAMDConfig.fromEnvironment(env) } throws: { e in
            Set((e as! ConfigError).variables) == ["AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_REGION", "VPC_CIDR_REFRESH_INTERVAL"]
        }
        env = base
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1338/"
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:5000"
        env["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:5001"
        env["AWS_SECRET_ACCESS_KEY"] = "s3cr3t"
        let c = try IPAMDConfig.fromEnvironment(env)
        #expect(c.cloud.metadataEndpoint == "http://127.0.0.1:1338")
        #expect(c.cloud.ec2Endpoint == "http://127.0.0.1:5000" && c.cloud.credentialEnvironment["AWS_ENDPOINT_URL_STS"] == "http://127.0.0.1:5001")
        #expect(c.cloud.credentialEnvironment["AWS_SECRET_ACCESS_KEY"] == "s3cr3t")
    }
}

@Suite struct RPCHandlerTests {
    func handler(_ dir: String) -> RPCHandler {
        writeAtomically(podsFile, to: dir + "/pods.json")
        var config = IPAMDConfig(podENISource: .file(path: dir + "/pods.json"), trunk: .name("eth1"), vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        config.node.enablePodENI = true
        return RPCHandler(config: config, source: StaticFileSource(path: dir + "/pods.json", logger: quiet), trunk: FixedTrunk(index: 4),
                          registry: PodRegistry(), logger: quiet)
    }

    @Test func addByPodIdentityAndByContainerID() {
        let h = handler(tempDir())
        let r = h.respond(RPCRequest(method: .addNetwork, pod: PodRequest(podName: "db-client", podNamespace: "default", containerID: "x")))
        #expect(r.network == PodNetwork(branch: true, podIPv4: "10.0.40.12", vlanID: 7, branchMAC: "0a:00:00:00:00:07", branchENIID: "eni-1",
                                        subnetCIDR: "10.0.32.0/19", subnetGatewayV4: "10.0.32.1", parentIfIndex: 4, vpcCIDRs: ["10.0.0.0/16"]))
        let c = h.respond(RPCRequest(method: .addNetwork, pod: PodRequest(containerID: "default-ctr1")))
        #expect(c.network?.vlanID == 8)
        #expect(h.registry.all.map(\.vlanID) == [8, 7])  // sorted by namespace/name; the ctr pod has neither
    }

    @Test func refusals() {
        let h = handler(tempDir())
        let bad = h.respond(RPCRequest(method: .addNetwork, pod: PodRequest(podName: "broken", podNamespace: "default", containerID: "y")))
        #expect(bad.error?.code == .invalidAnnotation)
        #expect(bad.error?.message.contains("vlanId") == true)
        #expect(h.respond(RPCRequest(method: .addNetwork, pod: PodRequest(podName: "nope", podNamespace: "default", containerID: "z"))).error?.code == .podNotFound)
        #expect(h.respond(RPCRequest(method: .addNetwork)).error?.code == .badRequest)
        #expect(h.registry.all.isEmpty)
    }

    @Test func delForgetsThePod() {
        let h = handler(tempDir())
        let pod = PodRequest(podName: "db-client", podNamespace: "default", containerID: "x")
        _ = h.respond(RPCRequest(method: .addNetwork, pod: pod))
        let d = h.respond(RPCRequest(method: .delNetwork, pod: pod))
        #expect(d.network?.vlanID == 7 && d.network?.podIPv4 == "10.0.40.12")
        #expect(h.registry.all.isEmpty)
    }

    @Test func lateDelOfOldSandboxKeepsTheNewOne() {
        let h = handler(tempDir())
        let old = PodRequest(podName: "db-client", podNamespace: "default", containerID: "old")
        let new = PodRequest(podName: "db-client", podNamespace: "default", containerID: "new")
        _ = h.respond(RPCRequest(method: .addNetwork, pod: old))
        _ = h.respond(RPCRequest(method: .addNetwork, pod: new))
        let d = h.respond(RPCRequest(method: .delNetwork, pod: old))
        #expect(d.error?.code == .podNotFound)
        #expect(d.error?.message.contains("new") == true)
        #expect(h.registry.all.map(\.containerID) == ["new"])
        #expect(h.respond(RPCRequest(method: .delNetwork, pod: new)).network?.vlanID == 7)
        #expect(h.registry.all.isEmpty)
    }

    @Test func fileChangesAreSeen() {
        let dir = tempDir()
        let h = handler(dir)
        let pod = PodRequest(podName: "late", podNamespace: "default", containerID: "l")
        #expect(h.respond(RPCRequest(method: .getNetwork, pod: pod)).error?.code == .podNotFound)
        writeAtomically(#"{"pods":{"default/late":[{"ifAddress":"0a:00:00:00:00:0a","privateIp":"10.0.40.20","vlanId":10,"subnetCidr":"10.0.32.0/19"}]}}"#, to: dir + "/pods.json")
        #expect(h.respond(RPCRequest(method: .getNetwork, pod: pod)).network?.vlanID == 10)
        // A broken rewrite keeps the last good content.
        writeAtomically("{oops", to: dir + "/pods.json")
        #expect(h.respond(RPCRequest(method: .getNetwork, pod: pod)).network?.vlanID == 10)
    }

    @Test func podENIOffAnswersAddAtOnceButStillLooksUpForCheckAndDel() {
        let dir = tempDir()
        writeAtomically(podsFile, to: dir + "/pods.json")
        let config = IPAMDConfig(podENISource: .file(path: dir + "/pods.json"), trunk: .name("eth1"), vpcCIDRs: [])
        let h = RPCHandler(config: config, source: StaticFileSource(path: dir + "/pods.json", logger: quiet), trunk: FixedTrunk(index: 4),
                           registry: PodRegistry(), logger: quiet)
        let pod = PodRequest(podName: "db-client", podNamespace: "default", containerID: "x")
        let add = h.respond(RPCRequest(method: .addNetwork, pod: pod))
        #expect(add.error?.code == .podNotFound && add.error?.message.contains("ENABLE_POD_ENI=false") == true)
        #expect(h.respond(RPCRequest(method: .getNetwork, pod: pod)).network?.vlanID == 7)
        #expect(h.respond(RPCRequest(method: .delNetwork, pod: pod)).network?.vlanID == 7)
    }

    @Test func missingTrunkIsAnError() {
        let dir = tempDir()
        writeAtomically(podsFile, to: dir + "/pods.json")
        var config = IPAMDConfig(podENISource: .file(path: dir + "/pods.json"), trunk: .name("eth9"), vpcCIDRs: [])
        config.node.enablePodENI = true
        let h = RPCHandler(config: config, source: StaticFileSource(path: dir + "/pods.json", logger: quiet), trunk: FixedTrunk(index: nil),
                           registry: PodRegistry(), logger: quiet)
        let r = h.respond(RPCRequest(method: .addNetwork, pod: PodRequest(podName: "db-client", podNamespace: "default", containerID: "x")))
        #expect(r.error?.code == .internal && r.error?.message.contains("eth9") == true)
    }
}
