import AWSCloud
import Foundation
import NetModel
import Testing
import TestSupport

/// The regular-pod pool's EC2 calls against moto, through the simulator (which adds what real EC2
/// does and moto does not: unique addresses, the instance type's limits, DeleteOnTermination).
@Suite struct EC2PoolTests {
    func client(_ sim: CloudSimulator) -> EC2Client {
        EC2Client(endpoint: sim.ec2URL, region: sim.initial.region, credentials: StaticCredentialsProvider(EC2Tests.credentials), http: realHTTP,
                  logger: quiet, retry: fastRetry, attemptTimeout: roomyTimeout)
    }

    @Test func instanceTypeLimitsFromDescribeInstanceTypes() async throws {
        try await withSimulator { (sim) async throws in
            let limits = try await client(sim).instanceTypeLimits("m5.large")
            #expect(limits == InstanceTypeLimits(instanceType: "m5.large", maxENIs: 3, ipv4PerENI: 10))
            let error = await cloudError { () throws(CloudError) in _ = try await client(sim).instanceTypeLimits("no.such") }
            guard case .api? = error else { Issue.record("an unknown type is EC2's error, got \(String(describing: error))"); return }
        }
    }

    /// Create, attach, delete-on-termination, addresses in and out, detach, delete: each call's
    /// effect read back through DescribeNetworkInterfaces.
    @Test func anENIsLifeAsThePoolLivesIt() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let ec2 = client(sim)
            let primary = try #require(try await ec2.networkInterfaces(ids: [sim.initial.primaryENI.eniID]).first)
            let tags = ["node.k8s.amazonaws.com/instance_id": sim.initial.instanceID, "node.k8s.amazonaws.com/createdAt": "2026-12-04T08:00:00Z"]
            let made = try await ec2.createNetworkInterface(ENIRequest(subnetID: primary.subnetID, securityGroupIDs: primary.securityGroupIDs,
                                                                       description: "aws-K8S-\(sim.initial.instanceID)", tags: tags))
            #expect(made.subnetID == sim.initial.subnetID && made.deviceIndex == nil && made.attachmentID == nil)
            #expect(made.description == "aws-K8S-\(sim.initial.instanceID)" && made.tags == tags)
            #expect(made.securityGroupIDs == primary.securityGroupIDs)
            let primaryIP = try #require(made.primaryIPv4)
            #expect(made.privateIPv4s == [primaryIP])

            await #expect(throws: CloudError.self) { try await ec2.attachNetworkInterface(id: made.id, instanceID: sim.initial.instanceID, deviceIndex: 0) }
            let attachment = try await ec2.attachNetworkInterface(id: made.id, instanceID: sim.initial.instanceID, deviceIndex: 1)
            try await ec2.setDeleteOnTermination(id: made.id, attachmentID: attachment)
            var eni = try #require(try await ec2.networkInterfaces(ids: [made.id]).first)
            #expect(eni.attachmentID == attachment && eni.deviceIndex == 1 && eni.deleteOnTermination)

            let assigned = try await ec2.assignPrivateIPv4(id: made.id, count: 4)
            #expect(assigned.count == 4 && !assigned.contains(primaryIP))
            eni = try #require(try await ec2.networkInterfaces(ids: [made.id]).first)
            #expect(Set(eni.privateIPv4s) == Set(assigned + [primaryIP]) && eni.primaryIPv4 == primaryIP)
            let subnet = try #require(IPPrefix(sim.initial.subnetCIDR))
            #expect(assigned.allSatisfy { subnet.contains(.v4($0)) })

            // m5.large: 10 addresses per interface, 5 held.
            let refused = await cloudError { () throws(CloudError) in _ = try await ec2.assignPrivateIPv4(id: made.id, count: 6) }
            guard case .api(_, "PrivateIpAddressLimitExceeded", _, _)? = refused else {
                Issue.record("beyond the type's addresses: PrivateIpAddressLimitExceeded, got \(String(describing: refused))"); return
            }
            try await ec2.unassignPrivateIPv4(id: made.id, Array(assigned.prefix(2)))
            eni = try #require(try await ec2.networkInterfaces(ids: [made.id]).first)
            #expect(Set(eni.privateIPv4s) == Set(assigned.suffix(2) + [primaryIP]))

            let inUse = await cloudError { () throws(CloudError) in try await ec2.deleteNetworkInterface(id: made.id) }
            guard case .api(_, "InvalidNetworkInterface.InUse", _, _)? = inUse else {
                Issue.record("an attached ENI is not deleted, got \(String(describing: inUse))"); return
            }
            try await ec2.detachNetworkInterface(attachmentID: attachment)
            try await ec2.deleteNetworkInterface(id: made.id)
            #expect(try await ec2.describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID).map(\.id) == [sim.initial.primaryENI.eniID])
            #expect(ec2.calls.count("CreateNetworkInterface") == 1 && ec2.calls.count("AssignPrivateIpAddresses") == 2)
        }
    }

    /// The instance type's interface limit is EC2's answer, not ours to guess.
    @Test func attachingBeyondTheInstanceTypeIsRefused() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let ec2 = client(sim)
            var refused: CloudError?
            for index in 1...3 {
                let eni = try await ec2.createNetworkInterface(ENIRequest(subnetID: sim.initial.subnetID, securityGroupIDs: [], description: "t", tags: [:]))
                do throws(CloudError) { _ = try await ec2.attachNetworkInterface(id: eni.id, instanceID: sim.initial.instanceID, deviceIndex: index) } catch {
                    refused = error
                    #expect(index == 3, "m5.large takes 3 interfaces")
                }
            }
            guard case .api(_, "AttachmentLimitExceeded", _, _)? = refused else {
                Issue.record("a fourth interface: AttachmentLimitExceeded, got \(String(describing: refused))"); return
            }
        }
    }

    /// Prefix delegation: /28s delegated on an attached ENI, listed, and taken back.
    @Test func prefixesDelegatedAndTakenBack() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let ec2 = client(sim)
            let eni = try await ec2.createNetworkInterface(ENIRequest(subnetID: sim.initial.subnetID, securityGroupIDs: [], description: "t", tags: [:]))
            _ = try await ec2.attachNetworkInterface(id: eni.id, instanceID: sim.initial.instanceID, deviceIndex: 1)
            let prefixes = try await ec2.assignIPv4Prefixes(id: eni.id, count: 2)
            #expect(prefixes.count == 2 && prefixes.allSatisfy { $0.length == 28 && $0.network == $0 })
            let subnet = try #require(IPPrefix(sim.initial.subnetCIDR))
            #expect(prefixes.allSatisfy { subnet.contains($0.address) })
            var listed = try #require(try await ec2.networkInterfaces(ids: [eni.id]).first)
            #expect(Set(listed.ipv4Prefixes) == Set(prefixes))
            // Addresses and prefixes share the interface's 10 slots (the ENI's own address is one).
            let refused = await cloudError { () throws(CloudError) in _ = try await ec2.assignIPv4Prefixes(id: eni.id, count: 8) }
            guard case .api(_, "PrivateIpAddressLimitExceeded", _, _)? = refused else {
                Issue.record("prefixes beyond the slots: \(String(describing: refused))"); return
            }
            try await ec2.unassignIPv4Prefixes(id: eni.id, [prefixes[0]])
            listed = try #require(try await ec2.networkInterfaces(ids: [eni.id]).first)
            #expect(listed.ipv4Prefixes == [prefixes[1]])
        }
    }
}
