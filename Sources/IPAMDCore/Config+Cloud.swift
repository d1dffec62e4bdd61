/// Where ipamd finds instance metadata and the AWS APIs, read with the rest of the config. The
/// variable names are the AWS SDKs' own, so an operator's existing settings (a VPC endpoint, a
/// proxy-free metadata address) carry over. The credential variables are read by the chain
/// itself (AWSCloud), from the `credentialEnvironment` captured here once.
public struct CloudSettings: Sendable, Hashable {
    /// AWS_EC2_METADATA_SERVICE_ENDPOINT.
    public var metadataEndpoint = "http://169.254.169.254"
    /// AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL; nil: https://ec2.<region>.amazonaws.com.
    public var ec2Endpoint: String?
    /// AWS_REGION (else AWS_DEFAULT_REGION); nil: the region instance metadata gives.
    public var region: String?
    /// VPC_CIDR_REFRESH_INTERVAL: how often the VPC's CIDRs are read again from metadata.
    public var vpcCIDRRefreshInterval: Duration = .seconds(60)
    /// The AWS_* variables the credential chain reads (keys and values, kept out of logs).
    public var credentialEnvironment: [String: String] = [:]

    public init() {}

    static let credentialVariables = [
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
        "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    ]

    static func read(_ r: inout EnvReader) -> CloudSettings {
        var s = CloudSettings()
        func url(_ k: String) -> String? {
            guard let v = r.value(k) else { return nil }
            guard isHTTPURL(v) else {
                r.fail(k, "\"\(v)\" is not an http:// or https:// URL; accepted values: a URL like http://169.254.169.254 or https://ec2.us-west-2.amazonaws.com")
                return nil
            }
            return v.hasSuffix("/") ? String(v.dropLast()) : v
        }
        if let m = url("AWS_EC2_METADATA_SERVICE_ENDPOINT") { s.metadataEndpoint = m }
        let shared = url("AWS_ENDPOINT_URL")
        s.ec2Endpoint = url("AWS_ENDPOINT_URL_EC2") ?? shared
        // Checked here; the credentials chain reads it (with the other credential variables).
        _ = url("AWS_ENDPOINT_URL_STS")
        let regionVariable = r.value("AWS_REGION") != nil ? "AWS_REGION" : "AWS_DEFAULT_REGION"
        if let region = r.value(regionVariable) {
            if !region.isEmpty, region.utf8.count <= 32, region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) {
                s.region = region
            } else {
                r.fail(regionVariable, "\"\(region)\" is not a region name; accepted values: a region like us-west-2")
            }
        }
        let every = r.read("VPC_CIDR_REFRESH_INTERVAL", default: 60,
                           accepted: "whole seconds from 5 to 3600 (default 60)") { t in Int(t).flatMap { (5...3600).contains($0) ? $0 : nil } }
        s.vpcCIDRRefreshInterval = .seconds(every)
        for k in credentialVariables { if let v = r.env[k] { s.credentialEnvironment[k] = v } }
        return s
    }

    static func isHTTPURL(_ v: String) -> Bool {
        for scheme in ["http://", "https://"] where v.hasPrefix(scheme) {
            let rest = v.dropFirst(scheme.count)
            return !rest.isEmpty && !rest.contains(" ") && rest.first != "/"
        }
        return false
    }
}

extension IPAMDConfig {
    /// Whether anything must come from the cloud: with TRUNK_INTERFACE (when pod ENI is on) and
    /// VPC_CIDRS (when node SNAT is on) given, ipamd makes no cloud call at all (the lab, the
    /// demo). With SNAT done outside the node, the VPC's CIDRs are read only when discovery runs
    /// anyway (for the trunk).
    public var needsDiscovery: Bool { (vpcCIDRs.isEmpty && !externalSNAT) || (enablePodENI && trunk == nil) }

    /// How long an AddNetwork waits for what is still on its way (the annotation, a late trunk).
    public var podENIWaitTimeout: Double {
        if case .kubernetes(let k) = podENISource { return k.waitTimeout }
        return KubernetesSettings(nodeName: "").waitTimeout
    }
}
