import Foundation
import NetModel

/// What an instance type allows (`DescribeInstanceTypes` → `NetworkInfo`).
public struct InstanceTypeLimits: Sendable, Hashable {
    public var instanceType: String
    /// `MaximumNetworkInterfaces`.
    public var maxENIs: Int
    /// `Ipv4AddressesPerInterface` (the ENI's own address included).
    public var ipv4PerENI: Int

    public init(instanceType: String, maxENIs: Int, ipv4PerENI: Int) {
        self.instanceType = instanceType; self.maxENIs = maxENIs; self.ipv4PerENI = ipv4PerENI
    }
}

/// A new ENI as ipamd asks for it: the primary ENI's subnet and security groups, its description
/// and tags (SPEC 3a: `aws-K8S-<instance id>`, the instance id, creation time and cluster tags).
public struct ENIRequest: Sendable, Hashable {
    public var subnetID: String
    public var securityGroupIDs: [String]
    public var description: String
    public var tags: [String: String]
    /// Makes a retried create (after a timeout) return the ENI the first one made, not a second.
    public var clientToken: String

    public init(subnetID: String, securityGroupIDs: [String], description: String, tags: [String: String], clientToken: String = UUID().uuidString) {
        self.subnetID = subnetID; self.securityGroupIDs = securityGroupIDs; self.description = description; self.tags = tags
        self.clientToken = clientToken
    }
}

/// The EC2 calls of the regular-pod address pool (issue 14), behind a protocol so the pool's
/// logic tests run without EC2.
public protocol EC2PoolAPI: EC2NetworkInterfaceAPI {
    func instanceTypeLimits(_ instanceType: String) async throws(CloudError) -> InstanceTypeLimits
    func networkInterfaces(ids: [String]) async throws(CloudError) -> [NetworkInterfaceDescription]
    func createNetworkInterface(_ request: ENIRequest) async throws(CloudError) -> NetworkInterfaceDescription
    /// Returns the attachment id.
    func attachNetworkInterface(id: String, instanceID: String, deviceIndex: Int) async throws(CloudError) -> String
    func setDeleteOnTermination(id: String, attachmentID: String) async throws(CloudError)
    /// Asks for `count` more secondary addresses; returns the ones EC2 says it assigned.
    func assignPrivateIPv4(id: String, count: Int) async throws(CloudError) -> [IPv4Address]
    func unassignPrivateIPv4(id: String, _ addresses: [IPv4Address]) async throws(CloudError)
    /// Prefix delegation: `count` more /28 prefixes; returns the ones EC2 says it delegated.
    func assignIPv4Prefixes(id: String, count: Int) async throws(CloudError) -> [IPPrefix]
    func unassignIPv4Prefixes(id: String, _ prefixes: [IPPrefix]) async throws(CloudError)
    func detachNetworkInterface(attachmentID: String) async throws(CloudError)
    func deleteNetworkInterface(id: String) async throws(CloudError)
}

extension EC2Client: EC2PoolAPI {
    public func instanceTypeLimits(_ instanceType: String) async throws(CloudError) -> InstanceTypeLimits {
        let url = query.endpoint + "/"
        let root = try await call(action: "DescribeInstanceTypes", parameters: [("InstanceType.1", instanceType)])
        guard let item = root.all("instanceTypeSet/item").first(where: { $0.text("instanceType") == instanceType }) else {
            throw .malformed(url: url, reason: "DescribeInstanceTypes does not list \(instanceType)")
        }
        guard let enis = item.text("networkInfo/maximumNetworkInterfaces").flatMap({ Int($0) }),
              let perENI = item.text("networkInfo/ipv4AddressesPerInterface").flatMap({ Int($0) }), enis > 0, perENI > 0 else {
            throw .malformed(url: url, reason: "\(instanceType): no maximumNetworkInterfaces or ipv4AddressesPerInterface")
        }
        return InstanceTypeLimits(instanceType: instanceType, maxENIs: enis, ipv4PerENI: perENI)
    }

    public func networkInterfaces(ids: [String]) async throws(CloudError) -> [NetworkInterfaceDescription] {
        let root = try await call(action: "DescribeNetworkInterfaces", parameters: ids.enumerated().map { ("NetworkInterfaceId.\($0.offset + 1)", $0.element) })
        return try Self.networkInterfaces(in: root, url: query.endpoint + "/")
    }

    public func createNetworkInterface(_ r: ENIRequest) async throws(CloudError) -> NetworkInterfaceDescription {
        var parameters = [("SubnetId", r.subnetID), ("Description", r.description), ("ClientToken", r.clientToken)]
        for (i, g) in r.securityGroupIDs.enumerated() { parameters.append(("SecurityGroupId.\(i + 1)", g)) }
        if !r.tags.isEmpty {
            parameters.append(("TagSpecification.1.ResourceType", "network-interface"))
            for (i, (k, v)) in r.tags.sorted(by: { $0.key < $1.key }).enumerated() {
                parameters += [("TagSpecification.1.Tag.\(i + 1).Key", k), ("TagSpecification.1.Tag.\(i + 1).Value", v)]
            }
        }
        let root = try await call(action: "CreateNetworkInterface", parameters: parameters)
        // The answer's single <networkInterface> has the shape of a describe item.
        guard let item = root.child("networkInterface") else {
            throw .malformed(url: query.endpoint + "/", reason: "CreateNetworkInterface answered without networkInterface")
        }
        guard let eni = try Self.networkInterfaces(in: XMLTreeNode(name: "r", children: [XMLTreeNode(name: "networkInterfaceSet", children: [
            XMLTreeNode(name: "item", text: item.text, children: item.children),
        ])]), url: query.endpoint + "/").first else {
            throw .malformed(url: query.endpoint + "/", reason: "CreateNetworkInterface answered an empty networkInterface")
        }
        return eni
    }

    public func attachNetworkInterface(id: String, instanceID: String, deviceIndex: Int) async throws(CloudError) -> String {
        let root = try await call(action: "AttachNetworkInterface", parameters: [
            ("NetworkInterfaceId", id), ("InstanceId", instanceID), ("DeviceIndex", String(deviceIndex)),
        ])
        guard let attachment = root.text("attachmentId"), !attachment.isEmpty else {
            throw .malformed(url: query.endpoint + "/", reason: "AttachNetworkInterface answered without attachmentId")
        }
        return attachment
    }

    public func setDeleteOnTermination(id: String, attachmentID: String) async throws(CloudError) {
        _ = try await call(action: "ModifyNetworkInterfaceAttribute", parameters: [
            ("NetworkInterfaceId", id), ("Attachment.AttachmentId", attachmentID), ("Attachment.DeleteOnTermination", "true"),
        ])
    }

    public func assignPrivateIPv4(id: String, count: Int) async throws(CloudError) -> [IPv4Address] {
        let root = try await call(action: "AssignPrivateIpAddresses", parameters: [
            ("NetworkInterfaceId", id), ("SecondaryPrivateIpAddressCount", String(count)),
        ])
        return try Self.addressList(root.all("assignedPrivateIpAddressesSet/item/privateIpAddress").map(\.text), of: id, url: query.endpoint + "/")
    }

    public func unassignPrivateIPv4(id: String, _ addresses: [IPv4Address]) async throws(CloudError) {
        _ = try await call(action: "UnassignPrivateIpAddresses", parameters: [("NetworkInterfaceId", id)]
            + addresses.enumerated().map { ("PrivateIpAddress.\($0.offset + 1)", $0.element.description) })
    }

    public func assignIPv4Prefixes(id: String, count: Int) async throws(CloudError) -> [IPPrefix] {
        let root = try await call(action: "AssignPrivateIpAddresses", parameters: [("NetworkInterfaceId", id), ("Ipv4PrefixCount", String(count))])
        var out: [IPPrefix] = []
        for text in root.all("assignedIpv4PrefixSet/item/ipv4Prefix").map(\.text) {
            guard let p = IPPrefix(text), p.family == .ipv4 else {
                throw .malformed(url: query.endpoint + "/", reason: "\(id): \(text) is not an IPv4 prefix")
            }
            out.append(p)
        }
        return out
    }

    public func unassignIPv4Prefixes(id: String, _ prefixes: [IPPrefix]) async throws(CloudError) {
        _ = try await call(action: "UnassignPrivateIpAddresses", parameters: [("NetworkInterfaceId", id)]
            + prefixes.enumerated().map { ("Ipv4Prefix.\($0.offset + 1)", $0.element.description) })
    }

    public func detachNetworkInterface(attachmentID: String) async throws(CloudError) {
        _ = try await call(action: "DetachNetworkInterface", parameters: [("AttachmentId", attachmentID)])
    }

    public func deleteNetworkInterface(id: String) async throws(CloudError) {
        _ = try await call(action: "DeleteNetworkInterface", parameters: [("NetworkInterfaceId", id)])
    }
}
