import AsyncHTTPClient
import Foundation
import Logging
import NetModel

/// The EC2 instance metadata service, IMDSv2 only (session token on every read): IMDSv1 is
/// commonly disabled on EKS nodes and is the weaker of the two.
public struct IMDSClient: InstanceMetadataProvider {
    public let endpoint: String
    let http: any CloudHTTPTransport
    let logger: Logger
    let retry: RetryPolicy
    let requestTimeout: Duration
    let tokenTTLSeconds: Int
    let tokens: IMDSTokenCache

    /// `endpoint`: see `IMDSClient.endpoint(environment:)`. `requestTimeout` bounds each HTTP
    /// exchange; `retry` the attempts of each read (the token fetch included).
    public init(endpoint: String = IMDSClient.defaultEndpoint, http: any CloudHTTPTransport, logger: Logger,
                retry: RetryPolicy = .imds, requestTimeout: Duration = .seconds(2), tokenTTLSeconds: Int = 21600) {
        var e = endpoint
        while e.hasSuffix("/") { e.removeLast() }
        self.endpoint = e; self.http = http; self.logger = logger; self.retry = retry; self.requestTimeout = requestTimeout
        self.tokenTTLSeconds = min(max(tokenTTLSeconds, 1), 21600)
        tokens = IMDSTokenCache(ttl: .seconds(self.tokenTTLSeconds))
    }

    /// The same over the process's `HTTPClient`.
    public init(endpoint: String = IMDSClient.defaultEndpoint, httpClient: HTTPClient, logger: Logger) {
        self.init(endpoint: endpoint, http: AsyncHTTPClientTransport(client: httpClient, logger: logger), logger: logger)
    }

    /// The text at `latest/meta-data/<path>`, trimmed. A 404 is `.http(status: 404, ...)` at once;
    /// 5xx, 429, timeouts and connection failures are retried; a 401 renews the token once.
    public func get(_ path: String) async throws(CloudError) -> String {
        let url = endpoint + "/latest/meta-data/" + path
        return try await withRetries(retry, what: "IMDS \(path)", url: url, logger: logger) { (_: Int) throws(CloudError) -> String in
            var token = try await tokens.token(fetch: tokenFetcher)
            var resp = try await http.send(getRequest(url, token: token))
            if resp.status == 401 {
                // Expired or revoked (IMDS restarts forget tokens): one new token, one repeat.
                logger.debug("IMDS refused the session token for \(path); fetching a new one")
                await tokens.invalidate(token)
                token = try await tokens.token(fetch: tokenFetcher)
                resp = try await http.send(getRequest(url, token: token))
            }
            guard resp.isSuccess else { throw .http(status: resp.status, url: url) }
            return resp.text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// A value that may be absent: nil on 404.
    public func getIfPresent(_ path: String) async throws(CloudError) -> String? {
        do throws(CloudError) {
            return try await get(path)
        } catch {
            if case .http(404, _) = error { return nil }
            throw error
        }
    }

    private func getRequest(_ url: String, token: String) -> CloudHTTPRequest {
        CloudHTTPRequest(method: "GET", url: url, headers: [("X-aws-ec2-metadata-token", token)], timeout: requestTimeout)
    }

    /// One PUT, no retries of its own: it runs inside the retry loop of the read that needed it.
    private var tokenFetcher: @Sendable () async throws(CloudError) -> String {
        { () async throws(CloudError) -> String in try await self.fetchToken() }
    }

    private func fetchToken() async throws(CloudError) -> String {
        let url = endpoint + "/latest/api/token"
        let resp = try await http.send(CloudHTTPRequest(method: "PUT", url: url,
                                                        headers: [("X-aws-ec2-metadata-token-ttl-seconds", String(tokenTTLSeconds))],
                                                        timeout: requestTimeout))
        guard resp.isSuccess else { throw .http(status: resp.status, url: url) }
        let token = resp.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw .malformed(url: url, reason: "empty session token") }
        return token
    }

    // MARK: typed reads

    public func instanceMetadata() async throws(CloudError) -> InstanceMetadata {
        let instanceID = try await get("instance-id")
        let region = try await get("placement/region")
        let zone = try await get("placement/availability-zone")
        let primaryMAC = try await parsed("mac", { MACAddress($0) }, "a MAC address")
        let primaryIPv4 = try await parsed("local-ipv4", { IPv4Address($0) }, "an IPv4 address")
        var interfaces: [InterfaceMetadata] = []
        for mac in try await macs() {
            interfaces.append(try await interface(mac: mac))
        }
        let instanceType = try await getIfPresent("instance-type") ?? ""
        return InstanceMetadata(instanceID: instanceID, region: region, availabilityZone: zone, primaryMAC: primaryMAC,
                                primaryIPv4: primaryIPv4, interfaces: interfaces, instanceType: instanceType)
    }

    /// Every MAC under `network/interfaces/macs/` (each listed as "<mac>/").
    public func macs() async throws(CloudError) -> [MACAddress] {
        let path = "network/interfaces/macs/"
        return try await list(path).map { (line: String) throws(CloudError) -> MACAddress in
            let text = line.hasSuffix("/") ? String(line.dropLast()) : line
            guard let mac = MACAddress(text) else { throw .malformed(url: endpoint + "/latest/meta-data/" + path, reason: "\(text) is not a MAC address") }
            return mac
        }
    }

    public func interface(mac: MACAddress) async throws(CloudError) -> InterfaceMetadata {
        let base = "network/interfaces/macs/\(mac)/"
        let deviceNumber = try await parsed(base + "device-number", { Int($0) }, "a number")
        // Single-card instance types have no network-card key at all.
        var networkCard: Int?
        if let text = try await getIfPresent(base + "network-card") {
            guard let n = Int(text) else { throw malformed(base + "network-card", text, "a number") }
            networkCard = n
        }
        let interfaceID = try await get(base + "interface-id")
        let subnetID = try await get(base + "subnet-id")
        let subnetCIDR = try await parsed(base + "subnet-ipv4-cidr-block", { IPPrefix($0) }, "an IPv4 prefix")
        let vpcID = try await get(base + "vpc-id")
        let cidrs = try await vpcCIDRs(mac: mac)
        let ips = try await list(base + "local-ipv4s").map { (t: String) throws(CloudError) -> IPv4Address in
            guard let ip = IPv4Address(t) else { throw malformed(base + "local-ipv4s", t, "an IPv4 address") }
            return ip
        }
        let groups = try await getIfPresent(base + "security-group-ids").map { $0.split(separator: "\n").map(String.init) } ?? []
        return InterfaceMetadata(mac: mac, deviceNumber: deviceNumber, networkCard: networkCard, interfaceID: interfaceID,
                                 subnetID: subnetID, subnetCIDR: subnetCIDR, vpcID: vpcID, vpcCIDRs: cidrs, localIPv4s: ips,
                                 securityGroupIDs: groups)
    }

    public func vpcCIDRs(mac: MACAddress) async throws(CloudError) -> [IPPrefix] {
        let path = "network/interfaces/macs/\(mac)/vpc-ipv4-cidr-blocks"
        return try await list(path).map { (t: String) throws(CloudError) -> IPPrefix in
            guard let p = IPPrefix(t) else { throw malformed(path, t, "an IPv4 prefix") }
            return p
        }
    }

    /// A newline-separated answer, blank lines dropped.
    private func list(_ path: String) async throws(CloudError) -> [String] {
        try await get(path).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private func parsed<T>(_ path: String, _ parse: (String) -> T?, _ what: String) async throws(CloudError) -> T {
        let text = try await get(path)
        guard let value = parse(text) else { throw malformed(path, text, what) }
        return value
    }

    private func malformed(_ path: String, _ text: String, _ what: String) -> CloudError {
        .malformed(url: endpoint + "/latest/meta-data/" + path, reason: "\"\(text.prefix(80))\" is not \(what)")
    }
}
