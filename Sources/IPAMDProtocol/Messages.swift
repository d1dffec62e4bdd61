import JSONText
/// RPC messages between aws-cni and ipamd (JSON inside the versioned frame of `Framing`).

public enum RPCMethod: String, Codable, Sendable {
    case addNetwork = "AddNetwork"
    case delNetwork = "DelNetwork"
    /// Lookup without side effects, for CHECK.
    case getNetwork = "GetNetwork"
    /// Liveness for CNI STATUS: ipamd answers when it serves.
    case ping = "Ping"
}

/// The pod as the runtime identified it to the plugin.
public struct PodRequest: Codable, Sendable, Hashable {
    public var podName: String
    public var podNamespace: String
    public var podUID: String
    public var containerID: String
    public var netns: String
    public var ifName: String
    public var networkName: String

    public init(podName: String = "", podNamespace: String = "", podUID: String = "", containerID: String,
                netns: String = "", ifName: String = "eth0", networkName: String = "") {
        self.podName = podName; self.podNamespace = podNamespace; self.podUID = podUID
        self.containerID = containerID; self.netns = netns; self.ifName = ifName; self.networkName = networkName
    }

    /// "namespace/name" when the runtime passed a pod identity, else the container id.
    public var key: String { podName.isEmpty ? containerID : "\(podNamespace)/\(podName)" }
}

public struct RPCRequest: Codable, Sendable, Hashable {
    public var method: RPCMethod
    public var pod: PodRequest?

    public init(method: RPCMethod, pod: PodRequest? = nil) { self.method = method; self.pod = pod }

    /// The JSON the encoder writes (slashes left unescaped), without the encoder: the plugin
    /// sends one request per run.
    public var json: String {
        var o = JSONObject()
        o.add("method", method.rawValue)
        o.add("pod", json: pod.map { p in
            var q = JSONObject()
            q.add("podName", p.podName)
            q.add("podNamespace", p.podNamespace)
            q.add("podUID", p.podUID)
            q.add("containerID", p.containerID)
            q.add("netns", p.netns)
            q.add("ifName", p.ifName)
            q.add("networkName", p.networkName)
            return q.text
        })
        return o.text
    }
}

/// Everything the plugin needs to build (or tear down) a pod's datapath.
public struct PodNetwork: Codable, Sendable, Hashable {
    /// True for a branch-ENI pod; false for a regular pod.
    public var branch: Bool
    public var podIPv4: String?
    public var podIPv6: String?
    public var vlanID: UInt16
    public var branchMAC: String?
    public var branchENIID: String?
    public var subnetCIDR: String?
    public var subnetGatewayV4: String?
    /// Trunk ifindex in the node namespace.
    public var parentIfIndex: Int32
    public var vpcCIDRs: [String]
    public var externalSNAT: Bool
    /// A regular pod's ENI (by device number: 0 is the primary, routed through main; another
    /// one's table is the number + 1). nil for branch pods and from ipamds before regular pods.
    public var deviceNumber: Int?
    /// A regular pod's ENI id (logs, `/v1/enis`).
    public var eniID: String?

    public init(branch: Bool, podIPv4: String? = nil, podIPv6: String? = nil, vlanID: UInt16 = 0, branchMAC: String? = nil,
                branchENIID: String? = nil, subnetCIDR: String? = nil, subnetGatewayV4: String? = nil,
                parentIfIndex: Int32 = 0, vpcCIDRs: [String] = [], externalSNAT: Bool = false, deviceNumber: Int? = nil, eniID: String? = nil) {
        self.deviceNumber = deviceNumber; self.eniID = eniID
        self.branch = branch; self.podIPv4 = podIPv4; self.podIPv6 = podIPv6; self.vlanID = vlanID
        self.branchMAC = branchMAC; self.branchENIID = branchENIID; self.subnetCIDR = subnetCIDR
        self.subnetGatewayV4 = subnetGatewayV4; self.parentIfIndex = parentIfIndex; self.vpcCIDRs = vpcCIDRs
        self.externalSNAT = externalSNAT
    }
}

public struct RPCFailure: Codable, Sendable, Hashable, Error, CustomStringConvertible {
    public enum Code: String, Codable, Sendable {
        /// The frame or JSON could not be understood.
        case badRequest
        /// Client and server speak different protocol versions.
        case unsupportedVersion
        /// ipamd knows no such pod (no branch details and no pool for regular pods).
        case podNotFound
        /// The pod's branch details are invalid; the message names the field.
        case invalidAnnotation
        /// The details have not arrived yet: retry later.
        case pending
        /// The pod of that name in the cluster has another UID (a recreated pod): refused.
        case podUIDMismatch
        /// Another running pod holds the VLAN or the address: refused, naming both pods.
        case conflict
        /// ipamd is shutting down: retry against its successor.
        case shuttingDown
        /// No address for a regular pod within the bound (the pool is refilling, or the node's
        /// ENIs are full): retry later; the message says which.
        case noAddressAvailable
        case `internal`
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }

    public var description: String { "\(code.rawValue): \(message)" }
}

public struct RPCReply: Codable, Sendable, Hashable {
    public var success: Bool
    public var network: PodNetwork?
    public var error: RPCFailure?

    public init(network: PodNetwork?) { success = true; self.network = network; error = nil }
    public init(error: RPCFailure) { success = false; network = nil; self.error = error }

    /// The JSON the encoder writes (sorted keys, slashes left unescaped), without the encoder:
    /// ipamd answers every request with one, and the encoder's generic machinery was a tenth of
    /// the cost of a repeated ADD.
    public var json: String {
        var o = JSONObject()
        o.add("success", success)
        o.add("network", json: network?.json)
        o.add("error", json: error.map { e in
            var f = JSONObject()
            f.add("code", e.code.rawValue)
            f.add("message", e.message)
            return f.text
        })
        return o.text
    }
}

extension PodNetwork {
    var json: String {
        var o = JSONObject()
        o.add("branch", branch)
        o.add("podIPv4", podIPv4)
        o.add("podIPv6", podIPv6)
        o.add("vlanID", Int(vlanID))
        o.add("branchMAC", branchMAC)
        o.add("branchENIID", branchENIID)
        o.add("subnetCIDR", subnetCIDR)
        o.add("subnetGatewayV4", subnetGatewayV4)
        o.add("parentIfIndex", Int(parentIfIndex))
        o.add("vpcCIDRs", strings: vpcCIDRs)
        o.add("externalSNAT", externalSNAT)
        o.add("deviceNumber", deviceNumber)
        o.add("eniID", eniID)
        return o.text
    }
}
