import AsyncHTTPClient
import Foundation
import Logging
import NetModel

/// EC2's query API (version 2016-11-15), signed with SigV4 for service `ec2`. ipamd's calls are
/// methods here; `call(action:parameters:)` is open for the ones still to come.
public struct EC2Client: EC2NetworkInterfaceAPI {
    public static let apiVersion = "2016-11-15"

    let query: AWSQueryClient
    /// Requests sent per action, retries included.
    public var calls: CallCounter { query.counter }
    /// `MaxResults` for DescribeNetworkInterfaces; nil lets EC2 choose (one page for an instance's few ENIs).
    let pageSize: Int?

    public init(endpoint: String, region: String, credentials: any AWSCredentialsProvider, http: any CloudHTTPTransport, logger: Logger,
                retry: RetryPolicy = .awsAPI, attemptTimeout: Duration = .seconds(10), pageSize: Int? = nil, counter: CallCounter = CallCounter(),
                now: @escaping @Sendable () -> Date = { Date() }) {
        query = AWSQueryClient(endpoint: endpoint, version: Self.apiVersion,
                               signing: .init(credentials: credentials, region: region, service: "ec2"),
                               http: http, logger: logger, retry: retry, attemptTimeout: attemptTimeout, counter: counter, now: now)
        self.pageSize = pageSize
    }

    /// The same over the process's `HTTPClient`.
    public init(endpoint: String, region: String, credentials: any AWSCredentialsProvider, httpClient: HTTPClient, counter: CallCounter = CallCounter(),
                logger: Logger) {
        self.init(endpoint: endpoint, region: region, credentials: credentials,
                  http: AsyncHTTPClientTransport(client: httpClient, logger: logger), logger: logger, counter: counter)
    }

    public var endpoint: String { query.endpoint }

    /// Any EC2 action: the answer's root element, or `.api` with EC2's error code.
    public func call(action: String, parameters: [(String, String)] = []) async throws(CloudError) -> XMLTreeNode {
        try await query.call(action: action, parameters: parameters)
    }

    public func describeInstanceNetworkInterfaces(instanceID: String) async throws(CloudError) -> [NetworkInterfaceDescription] {
        var all: [NetworkInterfaceDescription] = []
        var nextToken: String?
        var seenTokens: Set<String> = []
        repeat {
            var parameters = [("Filter.1.Name", "attachment.instance-id"), ("Filter.1.Value.1", instanceID)]
            if let pageSize { parameters.append(("MaxResults", String(pageSize))) }
            if let nextToken { parameters.append(("NextToken", nextToken)) }
            let root = try await call(action: "DescribeNetworkInterfaces", parameters: parameters)
            all += try Self.networkInterfaces(in: root, url: query.endpoint + "/")
            nextToken = root.text("nextToken").flatMap { $0.isEmpty ? nil : $0 }
            // A token that comes back twice would page forever.
            if let t = nextToken {
                guard seenTokens.insert(t).inserted else {
                    throw .malformed(url: query.endpoint + "/", reason: "DescribeNetworkInterfaces repeated a NextToken")
                }
            }
        } while nextToken != nil
        return all
    }

    /// The `networkInterfaceSet/item`s of a DescribeNetworkInterfaces answer.
    public static func networkInterfaces(in root: XMLTreeNode, url: String) throws(CloudError) -> [NetworkInterfaceDescription] {
        var result: [NetworkInterfaceDescription] = []
        for item in root.all("networkInterfaceSet/item") {
            guard let id = item.text("networkInterfaceId"), !id.isEmpty else {
                throw .malformed(url: url, reason: "network interface without networkInterfaceId")
            }
            guard let macText = item.text("macAddress"), let mac = MACAddress(macText) else {
                throw .malformed(url: url, reason: "\(id): macAddress missing or invalid")
            }
            var deviceIndex: Int?
            if let text = item.text("attachment/deviceIndex") {
                guard let d = Int(text) else { throw .malformed(url: url, reason: "\(id): deviceIndex \(text) is not a number") }
                deviceIndex = d
            }
            let addresses = try addressList(item.all("privateIpAddressesSet/item/privateIpAddress").map(\.text), of: id, url: url)
            var prefixes: [IPPrefix] = []
            for text in item.all("ipv4PrefixSet/item/ipv4Prefix").map(\.text) {
                guard let p = IPPrefix(text), p.family == .ipv4 else { throw .malformed(url: url, reason: "\(id): \(text) is not an IPv4 prefix") }
                prefixes.append(p)
            }
            var tags: [String: String] = [:]
            for tag in item.all("tagSet/item") { if let k = tag.text("key") { tags[k] = tag.text("value") ?? "" } }
            // EC2 leaves interfaceType out for plain ENIs in some answers.
            let type = item.text("interfaceType").flatMap { $0.isEmpty ? nil : $0 } ?? "interface"
            result.append(NetworkInterfaceDescription(id: id, mac: mac, interfaceType: type, deviceIndex: deviceIndex,
                                                      subnetID: item.text("subnetId") ?? "", vpcID: item.text("vpcId") ?? "",
                                                      privateIPv4s: addresses, primaryIPv4: item.text("privateIpAddress").flatMap { IPv4Address($0) },
                                                      ipv4Prefixes: prefixes, attachmentID: item.text("attachment/attachmentId"),
                                                      deleteOnTermination: item.text("attachment/deleteOnTermination") == "true",
                                                      description: item.text("description") ?? "",
                                                      securityGroupIDs: item.all("groupSet/item/groupId").map(\.text), tags: tags))
        }
        return result
    }

    static func addressList(_ texts: [String], of id: String, url: String) throws(CloudError) -> [IPv4Address] {
        var addresses: [IPv4Address] = []
        for text in texts {
            guard let ip = IPv4Address(text) else { throw .malformed(url: url, reason: "\(id): \(text) is not an IPv4 address") }
            addresses.append(ip)
        }
        return addresses
    }
}
