import JSONText

/// A CNI result (types/100 shape), encoded per the caller's cniVersion.
public struct CNIResult: Codable, Sendable, Hashable {
    public struct Interface: Codable, Sendable, Hashable {
        public var name: String
        public var mac: String?
        public var sandbox: String?

        public init(name: String, mac: String? = nil, sandbox: String? = nil) {
            self.name = name; self.mac = mac; self.sandbox = sandbox
        }
    }

    public struct IPConfig: Codable, Sendable, Hashable {
        /// "4" or "6"; only in results before 1.0.0.
        public var version: String?
        public var address: String
        public var gateway: String?
        public var interface: Int?

        public init(version: String? = nil, address: String, gateway: String? = nil, interface: Int? = nil) {
            self.version = version; self.address = address; self.gateway = gateway; self.interface = interface
        }
    }

    public struct RouteEntry: Codable, Sendable, Hashable {
        public var dst: String
        public var gw: String?

        public init(dst: String, gw: String? = nil) { self.dst = dst; self.gw = gw }
    }

    public struct DNS: Codable, Sendable, Hashable {
        public var nameservers: [String]?
        public var domain: String?
        public var search: [String]?
        public var options: [String]?

        public init() {}
    }

    public var cniVersion: String
    public var interfaces: [Interface]?
    public var ips: [IPConfig]?
    public var routes: [RouteEntry]?
    public var dns: DNS?

    public init(cniVersion: String, interfaces: [Interface]? = nil, ips: [IPConfig]? = nil,
                routes: [RouteEntry]? = nil, dns: DNS? = nil) {
        self.cniVersion = cniVersion; self.interfaces = interfaces; self.ips = ips
        self.routes = routes; self.dns = dns
    }

    /// The same result as the given version expects it: "version" on IPs only before 1.0.0.
    public func converted(to version: String) -> CNIResult {
        var r = self
        r.cniVersion = version
        r.ips = ips?.map { ip in
            var ip = ip
            ip.version = CNIVersion.ipsCarryVersion(version) ? (ip.address.contains(":") ? "6" : "4") : nil
            return ip
        }
        return r
    }

    /// What `CNIJSON.encode(self)` writes, without the encoder (the ADD's answer).
    public var json: String {
        var o = JSONObject()
        o.add("cniVersion", cniVersion)
        o.add("interfaces", json: interfaces.map { JSONText.array($0.map(\.json)) })
        o.add("ips", json: ips.map { JSONText.array($0.map(\.json)) })
        o.add("routes", json: routes.map { JSONText.array($0.map(\.json)) })
        o.add("dns", json: dns?.json)
        return o.text
    }
}

extension CNIResult.Interface {
    var json: String {
        var o = JSONObject()
        o.add("name", name)
        o.add("mac", mac)
        o.add("sandbox", sandbox)
        return o.text
    }
}

extension CNIResult.IPConfig {
    var json: String {
        var o = JSONObject()
        o.add("version", version)
        o.add("address", address)
        o.add("gateway", gateway)
        o.add("interface", interface)
        return o.text
    }
}

extension CNIResult.RouteEntry {
    var json: String {
        var o = JSONObject()
        o.add("dst", dst)
        o.add("gw", gw)
        return o.text
    }
}

extension CNIResult.DNS {
    var json: String {
        var o = JSONObject()
        o.add("nameservers", strings: nameservers)
        o.add("domain", domain)
        o.add("search", strings: search)
        o.add("options", strings: options)
        return o.text
    }
}
