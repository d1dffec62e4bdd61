import Foundation

// Where each service is, from the AWS SDKs' environment variables (SPEC section 7). ipamd reads
// its environment once and passes the dictionary; these helpers only apply the precedence.

/// An empty variable counts as unset, as in the SDKs; a trailing "/" is dropped.
func setting(_ environment: [String: String], _ name: String) -> String? {
    guard var v = environment[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
    while v.hasSuffix("/") { v.removeLast() }
    return v
}

/// The DNS suffix of a region's endpoints (the China partition has its own).
func dnsSuffix(region: String) -> String { region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com" }

public enum AWSEnvironment {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`; nil when neither is set (ipamd then uses IMDS's).
    public static func region(_ environment: [String: String]) -> String? {
        setting(environment, "AWS_REGION") ?? setting(environment, "AWS_DEFAULT_REGION")
    }

    /// `AWS_EC2_METADATA_DISABLED=true` turns IMDS off for the credentials chain, as in the SDKs.
    public static func imdsDisabled(_ environment: [String: String]) -> Bool {
        setting(environment, "AWS_EC2_METADATA_DISABLED")?.lowercased() == "true"
    }
}

extension IMDSClient {
    public static let defaultEndpoint = "http://169.254.169.254"

    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the link-local address.
    public static func endpoint(environment: [String: String]) -> String {
        setting(environment, "AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? defaultEndpoint
    }
}

extension EC2Client {
    /// `AWS_ENDPOINT_URL_EC2`, else `AWS_ENDPOINT_URL`, else `https://ec2.<region>.amazonaws.com`.
    public static func endpoint(environment: [String: String], region: String) -> String {
        setting(environment, "AWS_ENDPOINT_URL_EC2") ?? setting(environment, "AWS_ENDPOINT_URL")
            ?? "https://ec2.\(region).\(dnsSuffix(region: region))"
    }
}

extension WebIdentityCredentialsProvider {
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the regional `https://sts.<region>.amazonaws.com`.
    public static func stsEndpoint(environment: [String: String], region: String) -> String {
        setting(environment, "AWS_ENDPOINT_URL_STS") ?? setting(environment, "AWS_ENDPOINT_URL")
            ?? "https://sts.\(region).\(dnsSuffix(region: region))"
    }
}
