import Foundation
import IPAMDCore
import NetModel
import NodeSetup

/// The introspection endpoints of the reference (`/`, `/v1/enis`, the two env-settings views) in
/// its v1.23 JSON shapes, plus ours: `/v1/pods`, `/healthz`, `/readyz`. Served on
/// INTROSPECTION_BIND_ADDRESS and on the root-only debug socket.
public struct IntrospectionRoutes: HTTPRoutes {
    let config: IPAMDConfig
    let registry: PodRegistry
    let source: any PodENISource
    let inventory: NodeInventory
    /// Only on the root-only debug socket: explanations carry container ids and read the kernel.
    let explainer: PodExplainer?
    /// The regular pods' pool (nil without one).
    let pool: PoolSnapshotBoard?

    public init(config: IPAMDConfig, registry: PodRegistry, source: any PodENISource, inventory: NodeInventory, explainer: PodExplainer? = nil,
                pool: PoolSnapshotBoard? = nil) {
        self.config = config; self.registry = registry; self.source = source; self.inventory = inventory; self.explainer = explainer
        self.pool = pool
    }

    /// The reference's four and ours, in the order `/` lists them.
    public static let endpoints = ["/v1/enis", "/v1/networkutils-env-settings", "/v1/ipamd-env-settings", "/v1/pods", "/healthz", "/readyz"]

    public var paths: [String] { ["/"] + Self.endpoints + (explainer == nil ? [] : ["/v1/explain/"]) }

    public func reply(path: String, query: String) -> HTTPReply {
        switch path {
        case "/": json(["AvailableCommands": Self.endpoints])
        case "/v1/enis": json(eniView())
        case "/v1/pods": json(pods(datapath: query.split(separator: "&").contains("datapath=1")))
        case "/v1/networkutils-env-settings": json(NetworkUtilsSettings(config))
        case "/v1/ipamd-env-settings": json(IPAMDSettings(config))
        case "/healthz": HTTPReply(.ok, json: #"{"status":"ok"}"#)
        case "/readyz":
            inventory.isReady
                ? HTTPReply(.ok, json: #"{"status":"ready"}"#)
                : HTTPReply(.serviceUnavailable, json: #"{"status":"not ready","reason":"node setup or the plugin install has not finished"}"#)
        case _ where path.hasPrefix("/v1/explain/"): explain(String(path.dropFirst("/v1/explain/".count)))
        default: .error(.notFound, "unknown path \(path)")
        }
    }

    func pods(datapath: Bool) -> [PodView] {
        var views = PodView.merge(source: source.podViews(), served: registry.all)
        guard datapath, let explainer else { return views }
        for i in views.indices where views[i].state == .served {
            let key = views[i].name.isEmpty ? views[i].containerID ?? "" : "\(views[i].namespace)/\(views[i].name)"
            views[i].datapath = (try? explainer.explain(key).summary) ?? "unreadable"
        }
        return views
    }

    func explain(_ key: String) -> HTTPReply {
        guard let explainer else { return .error(.notFound, "explain is served on the debug socket only") }
        do throws(ExplainError) {
            return json(try explainer.explain(key.removingPercentEncoding ?? key))
        } catch {
            if case .notServed = error { return .error(.notFound, error.description) }
            return .error(.internalServerError, error.description)
        }
    }

    func json<T: Encodable>(_ value: T) -> HTTPReply {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? enc.encode(value) else { return .error(.internalServerError, "cannot encode the answer") }
        return HTTPReply(.ok, body: Array(data) + [10])
    }

    /// `{"<network card>": {"TotalIPs", "AssignedIPs", "ENIs": {...}}}`: each pool ENI's addresses
    /// with the pod that holds each, the trunk's branch ENIs (ours: `BranchENIs`) by pod; no
    /// container ids (the reference scrubs them: they are what a DelNetwork needs).
    func eniView() -> [String: ENIGroupView] {
        let served = registry.all.filter(\.branch)
        let poolENIs = Dictionary((pool?.current ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var records = inventory.enis
        // ENIs the pool attached since discovery.
        for p in poolENIs.values where !records.contains(where: { $0.id == p.id }) {
            records.append(ENIRecord(id: p.id, mac: p.mac, deviceNumber: p.deviceNumber, isPrimary: p.deviceNumber == 0, isTrunk: false, subnetCIDR: p.subnet))
        }
        var cards: [String: ENIGroupView] = [:]
        for eni in records.sorted(by: { ($0.networkCard, $0.deviceNumber) < ($1.networkCard, $1.deviceNumber) }) {
            var v = ENIView(eni)
            if let p = poolENIs[eni.id] {
                v.AvailableIPv4Cidrs = Dictionary(p.addresses.map { a in
                    ("\(a.address)/32", CIDRView(Cidr: "\(a.address)/32", IsPrefix: false, IPAddresses: [a.address.description: AddressView(a)]))
                }, uniquingKeysWith: { a, _ in a })
                cards["\(eni.networkCard)", default: ENIGroupView()].TotalIPs += p.addresses.count
                cards["\(eni.networkCard)", default: ENIGroupView()].AssignedIPs += p.addresses.filter { $0.holder != nil }.count
            }
            if eni.isTrunk {
                v.BranchENIs = Dictionary(served.map { p in
                    (p.eniID, BranchENIView(ID: p.eniID, VlanID: Int(p.vlanID), MAC: p.mac, IPv4Address: p.ipv4 ?? "",
                                            PodNamespace: p.namespace, PodName: p.name, AssignedTime: p.servedAt))
                }, uniquingKeysWith: { a, _ in a })
            }
            cards["\(eni.networkCard)", default: ENIGroupView()].ENIs[eni.id.isEmpty ? eni.linkName ?? eni.mac?.description ?? "" : eni.id] = v
        }
        return cards
    }
}

struct ENIGroupView: Encodable {
    var TotalIPs = 0
    var AssignedIPs = 0
    var ENIs: [String: ENIView] = [:]
}

struct ENIView: Encodable {
    var ID: String
    var IsPrimary: Bool
    var IsTrunk: Bool
    var IsEFA = false
    var DeviceNumber: Int
    var AvailableIPv4Cidrs: [String: CIDRView] = [:]
    var IPv6Cidrs: [String: String] = [:]
    var IsExcludedForPodIPs = false
    var RouteTableID: Int
    var SubnetID: String
    // Ours.
    var MAC: String?
    var LinkName: String?
    var BranchENIs: [String: BranchENIView]?

    init(_ e: ENIRecord) {
        ID = e.id; IsPrimary = e.isPrimary; IsTrunk = e.isTrunk; DeviceNumber = e.deviceNumber
        // The reference's tables: main for the primary ENI, device number + 1 for the others.
        RouteTableID = e.isPrimary ? 254 : e.deviceNumber + 1
        SubnetID = e.subnetID; MAC = e.mac?.description; LinkName = e.linkName
    }
}

/// The reference's per-address view (`/32` "CIDRs", prefixes later), container id scrubbed.
struct CIDRView: Encodable {
    var Cidr: String
    var IsPrefix: Bool
    var IPAddresses: [String: AddressView]
}

struct AddressView: Encodable {
    struct Key: Encodable {
        var networkName: String
        var containerID: String
        var ifName: String
    }
    struct Metadata: Encodable {
        var k8sPodNamespace: String
        var k8sPodName: String
    }
    var Address: String
    var IPAMKey: Key
    var IPAMMetadata: Metadata
    // Ours: the reference shows an unassign time; a cooling address is one released within the cool-down.
    var CoolingDown: Bool

    init(_ a: PoolENISnapshot.Address) {
        Address = a.address.description
        IPAMKey = Key(networkName: a.holder?.networkName ?? "", containerID: "", ifName: a.holder?.ifName ?? "")
        IPAMMetadata = Metadata(k8sPodNamespace: a.holder?.namespace ?? "", k8sPodName: a.holder?.name ?? "")
        CoolingDown = a.coolingDown
    }
}

struct BranchENIView: Encodable {
    var ID: String
    var VlanID: Int
    var MAC: String
    var IPv4Address: String
    var PodNamespace: String
    var PodName: String
    var AssignedTime: String
}

struct NetworkUtilsSettings: Encodable {
    var connmark: Int
    var excluded: [String]
    var externalSNAT: Bool
    var externalServiceCIDRs: [String]
    var mtu: Int
    var vethPrefix: String
    var nodePortSupport: Bool
    var randomizeSNAT: Int

    init(_ c: IPAMDConfig) {
        connmark = Int(c.node.connmark); excluded = c.node.excludedSNATCIDRs.map(\.description); externalSNAT = c.node.externalSNAT
        externalServiceCIDRs = c.servers.externalServiceCIDRs.map(\.description); mtu = Int(c.eniMTU); vethPrefix = c.node.vethPrefix
        nodePortSupport = c.servers.nodePortSupport
        // The reference's numbers: 0 none, 1 hashrandom, 2 prng.
        randomizeSNAT = switch c.node.portRandomization { case .none: 0; case .hashrandom: 1; case .prng: 2 }
    }

    enum CodingKeys: String, CodingKey {
        case connmark = "AWS_VPC_K8S_CNI_CONNMARK", excluded = "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"
        case externalSNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT", externalServiceCIDRs = "AWS_EXTERNAL_SERVICE_CIDRS"
        case mtu = "AWS_VPC_ENI_MTU", vethPrefix = "AWS_VPC_K8S_CNI_VETHPREFIX"
        case nodePortSupport = "AWS_VPC_CNI_NODE_PORT_SUPPORT", randomizeSNAT = "AWS_VPC_K8S_CNI_RANDOMIZESNAT"
    }
}

struct IPAMDSettings: Encodable {
    var warmIPTarget: Int
    var warmENITarget: Int
    var customNetwork: Bool
    var manageNonSchedulable: Bool
    var subnetDiscovery: Bool

    init(_ c: IPAMDConfig) {
        // Custom networking is refused at start, so it is always off here.
        warmIPTarget = c.pool.warmIP; warmENITarget = c.pool.warmENI; customNetwork = false
        manageNonSchedulable = c.servers.manageENIsOnNonSchedulable; subnetDiscovery = c.servers.subnetDiscovery
    }

    enum CodingKeys: String, CodingKey {
        case warmIPTarget = "WARM_IP_TARGET", warmENITarget = "WARM_ENI_TARGET", customNetwork = "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"
        case manageNonSchedulable = "AWS_MANAGE_ENIS_NON_SCHEDULABLE", subnetDiscovery = "ENABLE_SUBNET_DISCOVERY"
    }
}
