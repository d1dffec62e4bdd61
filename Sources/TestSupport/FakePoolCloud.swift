import AWSCloud
import EnforcingMode
import Foundation
import IPAMDPool
import NetModel

/// EC2 as the pool sees it, in memory: an instance type's limits, ENIs with addresses drawn from
/// one subnet, attachments, and injected failures.
public final class FakePoolEC2: EC2PoolAPI, @unchecked Sendable {
    struct ENI { var d: NetworkInterfaceDescription }
    private let lock = NSLock()
    private var enis: [String: ENI] = [:]
    private var next: UInt32 = 0x0a00_0010  // 10.0.0.16 on
    private var counter = 0
    public var limits = InstanceTypeLimits(instanceType: "m5.large", maxENIs: 3, ipv4PerENI: 10)
    /// Every call fails with this while set (throttling, 5xx).
    public var failure: CloudError?
    public private(set) var calls: [String: Int] = [:]

    public init(primary: String = "eni-primary") {
        let ip = take()
        enis[primary] = ENI(d: NetworkInterfaceDescription(id: primary, mac: MACAddress("0a:00:00:00:00:01")!, interfaceType: "interface", deviceIndex: 0,
                                                           subnetID: "subnet-1", vpcID: "vpc-1", privateIPv4s: [ip], primaryIPv4: ip, attachmentID: "attach-0"))
    }

    private func take() -> IPv4Address { next += 1; return IPv4Address(next) }

    private func call<T>(_ name: String, _ body: () throws(CloudError) -> T) throws(CloudError) -> T {
        lock.lock(); defer { lock.unlock() }
        calls[name, default: 0] += 1
        if let failure { throw failure }
        return try body()
    }

    public var attached: [NetworkInterfaceDescription] { lock.withLock { enis.values.map(\.d).filter { $0.deviceIndex != nil }.sorted { $0.deviceIndex! < $1.deviceIndex! } } }
    public var all: [NetworkInterfaceDescription] { lock.withLock { enis.values.map(\.d) } }
    public func count(_ name: String) -> Int { lock.withLock { calls[name] ?? 0 } }

    public func describeInstanceNetworkInterfaces(instanceID: String) async throws(CloudError) -> [NetworkInterfaceDescription] {
        try call("DescribeInstanceNetworkInterfaces") { enis.values.map(\.d).filter { $0.deviceIndex != nil } }
    }
    /// What the VPC resource controller does: a trunk ENI attached at `deviceIndex`.
    public func attachTrunk(deviceIndex: Int) {
        lock.withLock {
            let ip = take()
            enis["eni-trunk"] = ENI(d: NetworkInterfaceDescription(id: "eni-trunk", mac: MACAddress("0a:00:00:00:0f:01")!, interfaceType: "trunk",
                                                                    deviceIndex: deviceIndex, subnetID: "subnet-1", vpcID: "vpc-1", privateIPv4s: [ip],
                                                                    primaryIPv4: ip, attachmentID: "attach-trunk"))
        }
    }
    public func instanceTypeLimits(_ instanceType: String) async throws(CloudError) -> InstanceTypeLimits { try call("DescribeInstanceTypes") { limits } }
    public func networkInterfaces(ids: [String]) async throws(CloudError) -> [NetworkInterfaceDescription] {
        try call("DescribeNetworkInterfaces") { ids.compactMap { enis[$0]?.d } }
    }
    public func createNetworkInterface(_ r: ENIRequest) async throws(CloudError) -> NetworkInterfaceDescription {
        try call("CreateNetworkInterface") {
            counter += 1
            let ip = take()
            let d = NetworkInterfaceDescription(id: "eni-\(counter)", mac: MACAddress(bytes: [0x0a, 0, 0, 0, 1, UInt8(counter)])!, interfaceType: "interface",
                                                deviceIndex: nil, subnetID: r.subnetID, vpcID: "vpc-1", privateIPv4s: [ip], primaryIPv4: ip,
                                                description: r.description, securityGroupIDs: r.securityGroupIDs, tags: r.tags)
            enis[d.id] = ENI(d: d)
            return d
        }
    }
    public func attachNetworkInterface(id: String, instanceID: String, deviceIndex: Int) async throws(CloudError) -> String {
        try call("AttachNetworkInterface") { () throws(CloudError) -> String in
            let n = enis.values.filter { $0.d.deviceIndex != nil }.count
            guard n < limits.maxENIs else { throw .api(status: 400, code: "AttachmentLimitExceeded", message: "", requestID: nil) }
            guard !enis.values.contains(where: { $0.d.deviceIndex == deviceIndex }) else {
                throw .api(status: 400, code: "InvalidParameterValue", message: "device index \(deviceIndex) in use", requestID: nil)
            }
            enis[id]!.d.deviceIndex = deviceIndex
            enis[id]!.d.attachmentID = "attach-\(id)"
            return "attach-\(id)"
        }
    }
    public func setDeleteOnTermination(id: String, attachmentID: String) async throws(CloudError) {
        try call("ModifyNetworkInterfaceAttribute") { enis[id]!.d.deleteOnTermination = true }
    }
    public func assignPrivateIPv4(id: String, count: Int) async throws(CloudError) -> [IPv4Address] {
        try call("AssignPrivateIpAddresses") { () throws(CloudError) -> [IPv4Address] in
            guard enis[id]!.d.privateIPv4s.count + count <= limits.ipv4PerENI else {
                throw .api(status: 400, code: "PrivateIpAddressLimitExceeded", message: "", requestID: nil)
            }
            let new = (0..<count).map { _ in take() }
            enis[id]!.d.privateIPv4s += new
            return new
        }
    }
    public func unassignPrivateIPv4(id: String, _ addresses: [IPv4Address]) async throws(CloudError) {
        try call("UnassignPrivateIpAddresses") { enis[id]!.d.privateIPv4s.removeAll { addresses.contains($0) } }
    }
    private var nextPrefix: UInt32 = 0x0a00_1000  // 10.0.16.0/28 on
    public func assignIPv4Prefixes(id: String, count: Int) async throws(CloudError) -> [IPPrefix] {
        try call("AssignPrivateIpAddresses") { () throws(CloudError) -> [IPPrefix] in
            guard enis[id]!.d.privateIPv4s.count + enis[id]!.d.ipv4Prefixes.count + count <= limits.ipv4PerENI else {
                throw .api(status: 400, code: "PrivateIpAddressLimitExceeded", message: "", requestID: nil)
            }
            let new = (0..<count).map { _ in
                defer { nextPrefix += 16 }
                return IPPrefix(address: .v4(IPv4Address(nextPrefix)), length: 28)!
            }
            enis[id]!.d.ipv4Prefixes += new
            return new
        }
    }
    public func unassignIPv4Prefixes(id: String, _ prefixes: [IPPrefix]) async throws(CloudError) {
        try call("UnassignPrivateIpAddresses") { enis[id]!.d.ipv4Prefixes.removeAll { prefixes.contains($0) } }
    }
    public func detachNetworkInterface(attachmentID: String) async throws(CloudError) {
        try call("DetachNetworkInterface") {
            for (k, v) in enis where v.d.attachmentID == attachmentID { enis[k]!.d.attachmentID = nil; enis[k]!.d.deviceIndex = nil }
        }
    }
    public func deleteNetworkInterface(id: String) async throws(CloudError) {
        try call("DeleteNetworkInterface") { () throws(CloudError) in
            guard enis[id]?.d.deviceIndex == nil else { throw .api(status: 400, code: "InvalidNetworkInterface.InUse", message: "", requestID: nil) }
            enis[id] = nil
        }
    }
}

/// Links appear at once, named by device number; what was configured is kept.
public final class FakeENIHost: ENIHost, @unchecked Sendable {
    public init() {}
    private let lock = NSLock()
    private var devices: [MACAddress: String] = [:]
    public private(set) var configured: [String: SecondaryENI] = [:]
    public func awaitLink(mac: MACAddress, until deadline: ContinuousClock.Instant) async throws -> String? {
        lock.withLock {
            if devices[mac] == nil { devices[mac] = "eth\(devices.count + 1)" }
            return devices[mac]
        }
    }
    public func configure(_ eni: SecondaryENI, mtu: UInt32) throws { lock.withLock { configured[eni.link] = eni } }
    public func unconfigure(_ eni: SecondaryENI) throws { _ = lock.withLock { configured.removeValue(forKey: eni.link) } }
    public var links: [String: SecondaryENI] { lock.withLock { configured } }
}

