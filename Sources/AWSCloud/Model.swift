import NetModel

// What ipamd learns from the cloud, as typed values. The clients (IMDSClient, EC2Client) fill
// them; ipamd's discovery only sees these protocols, so its logic tests need no network.

/// One network interface as instance metadata lists it under `network/interfaces/macs/<mac>/`.
public struct InterfaceMetadata: Sendable, Hashable {
    public var mac: MACAddress
    public var deviceNumber: Int
    /// `network-card`; nil where IMDS has no such key (single-card instance types).
    public var networkCard: Int?
    public var interfaceID: String
    public var subnetID: String
    public var subnetCIDR: IPPrefix
    public var vpcID: String
    public var vpcCIDRs: [IPPrefix]
    public var localIPv4s: [IPv4Address]
    /// `security-group-ids`: new ENIs of the pool get the primary ENI's.
    public var securityGroupIDs: [String]

    public init(mac: MACAddress, deviceNumber: Int, networkCard: Int? = nil, interfaceID: String, subnetID: String,
                subnetCIDR: IPPrefix, vpcID: String, vpcCIDRs: [IPPrefix], localIPv4s: [IPv4Address], securityGroupIDs: [String] = []) {
        self.mac = mac; self.deviceNumber = deviceNumber; self.networkCard = networkCard; self.interfaceID = interfaceID
        self.subnetID = subnetID; self.subnetCIDR = subnetCIDR; self.vpcID = vpcID; self.vpcCIDRs = vpcCIDRs; self.localIPv4s = localIPv4s
        self.securityGroupIDs = securityGroupIDs
    }
}

/// The facts ipamd reads from IMDS at start.
public struct InstanceMetadata: Sendable, Hashable {
    public var instanceID: String
    public var region: String
    public var availabilityZone: String
    public var primaryMAC: MACAddress
    public var primaryIPv4: IPv4Address
    /// Every MAC under `network/interfaces/macs/`, the primary among them.
    public var interfaces: [InterfaceMetadata]
    /// `instance-type` (the pool's limits come from DescribeInstanceTypes for it).
    public var instanceType: String

    public init(instanceID: String, region: String, availabilityZone: String, primaryMAC: MACAddress, primaryIPv4: IPv4Address,
                interfaces: [InterfaceMetadata], instanceType: String = "") {
        self.instanceID = instanceID; self.region = region; self.availabilityZone = availabilityZone
        self.primaryMAC = primaryMAC; self.primaryIPv4 = primaryIPv4; self.interfaces = interfaces; self.instanceType = instanceType
    }

    public var primary: InterfaceMetadata? { interfaces.first { $0.mac == primaryMAC } }
}

/// One ENI attached to the instance, as EC2 `DescribeNetworkInterfaces` describes it.
public struct NetworkInterfaceDescription: Sendable, Hashable {
    public var id: String
    public var mac: MACAddress
    /// EC2 `InterfaceType`: "interface", "trunk", "branch", "efa", ...
    public var interfaceType: String
    public var deviceIndex: Int?
    public var subnetID: String
    public var vpcID: String
    public var privateIPv4s: [IPv4Address]
    /// The ENI's own address (`privateIpAddress`): never a pod's.
    public var primaryIPv4: IPv4Address?
    /// Delegated /28 prefixes (`ipv4PrefixSet`).
    public var ipv4Prefixes: [IPPrefix]
    public var attachmentID: String?
    public var deleteOnTermination: Bool
    public var description: String
    public var securityGroupIDs: [String]
    public var tags: [String: String]

    public init(id: String, mac: MACAddress, interfaceType: String, deviceIndex: Int?, subnetID: String, vpcID: String, privateIPv4s: [IPv4Address],
                primaryIPv4: IPv4Address? = nil, ipv4Prefixes: [IPPrefix] = [], attachmentID: String? = nil, deleteOnTermination: Bool = false,
                description: String = "", securityGroupIDs: [String] = [], tags: [String: String] = [:]) {
        self.id = id; self.mac = mac; self.interfaceType = interfaceType; self.deviceIndex = deviceIndex
        self.subnetID = subnetID; self.vpcID = vpcID; self.privateIPv4s = privateIPv4s
        self.primaryIPv4 = primaryIPv4; self.ipv4Prefixes = ipv4Prefixes; self.attachmentID = attachmentID
        self.deleteOnTermination = deleteOnTermination; self.description = description; self.securityGroupIDs = securityGroupIDs; self.tags = tags
    }

    public var isTrunk: Bool { interfaceType == "trunk" }
}

/// Instance metadata, behind a protocol so discovery logic tests run without a metadata service.
public protocol InstanceMetadataProvider: Sendable {
    /// Reads every fact of `InstanceMetadata` (retrying within the client's bounds).
    func instanceMetadata() async throws(CloudError) -> InstanceMetadata
    /// Re-reads the VPC's IPv4 CIDRs of `mac` (`vpc-ipv4-cidr-blocks`), for the periodic refresh.
    func vpcCIDRs(mac: MACAddress) async throws(CloudError) -> [IPPrefix]
}

/// The EC2 calls ipamd makes, behind a protocol for the same reason.
public protocol EC2NetworkInterfaceAPI: Sendable {
    /// `DescribeNetworkInterfaces` filtered by `attachment.instance-id` (every page).
    func describeInstanceNetworkInterfaces(instanceID: String) async throws(CloudError) -> [NetworkInterfaceDescription]
}

/// Every cloud failure, typed: callers decide on the case, never on message text.
public enum CloudError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An AWS API error answer: its code (`RequestLimitExceeded`, `UnauthorizedOperation`, ...),
    /// message and request id, with the HTTP status.
    case api(status: Int, code: String, message: String, requestID: String?)
    /// An HTTP answer that is not an API error document (IMDS 404, a proxy's 502, ...).
    case http(status: Int, url: String)
    /// No answer within the call's deadline (after the retries).
    case timeout(url: String)
    /// Connection refused, reset, DNS, TLS: the request did not get an HTTP answer.
    case transport(url: String, reason: String)
    /// An answer that does not parse as what the endpoint documents.
    case malformed(url: String, reason: String)
    /// No credentials provider in the chain had credentials; lists what each one said.
    case noCredentials(tried: [String])

    public var description: String {
        switch self {
        case let .api(status, code, message, requestID):
            "\(code) (HTTP \(status)): \(message)\(requestID.map { " [request id \($0)]" } ?? "")"
        case let .http(status, url): "HTTP \(status) from \(url)"
        case let .timeout(url): "no answer from \(url) in time"
        case let .transport(url, reason): "cannot reach \(url): \(reason)"
        case let .malformed(url, reason): "unexpected answer from \(url): \(reason)"
        case let .noCredentials(tried): "no AWS credentials: \(tried.joined(separator: "; "))"
        }
    }

    /// The `error` label of the API metrics: the service's code, or the kind of failure.
    public var metricCode: String {
        switch self {
        case let .api(_, code, _, _): code
        case let .http(status, _): "HTTP\(status)"
        case .timeout: "Timeout"
        case .transport: "TransportError"
        case .malformed: "MalformedResponse"
        case .noCredentials: "NoCredentials"
        }
    }

    /// Whether the same call may succeed if repeated later (throttling, 5xx, timeouts, resets).
    public var isRetryable: Bool {
        switch self {
        case let .api(status, code, _, _):
            status >= 500 || ["RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
                              "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"].contains(code)
        case let .http(status, _): status >= 500 || status == 429
        case .timeout, .transport: true
        case .malformed, .noCredentials: false
        }
    }
}
