/// The instance profile's role from IMDS (`iam/security-credentials/` names the role, then
/// `iam/security-credentials/<role>` holds its credentials): ipamd's usual source on a node.
public struct InstanceRoleCredentialsProvider: AWSCredentialsProvider {
    public let name = "instance-role"
    let imds: IMDSClient

    public init(imds: IMDSClient) { self.imds = imds }

    public func credentials() async throws(CloudError) -> AWSCredentials {
        let listPath = "iam/security-credentials/"
        guard let roles = try await imds.getIfPresent(listPath) else {
            throw .noCredentials(tried: ["instance-role: the instance has no IAM role (IMDS 404)"])
        }
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw .noCredentials(tried: ["instance-role: IMDS lists no role"])
        }
        let path = listPath + role
        // The document holds the secret: parsed here, never logged or quoted in an error.
        let body = try await imds.get(path)
        return try CredentialsDocument.parse(Array(body.utf8), url: imds.endpoint + "/latest/meta-data/" + path, source: name)
    }
}
