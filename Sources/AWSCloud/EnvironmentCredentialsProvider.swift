/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`, read once
/// from the environment dictionary ipamd was started with.
public struct EnvironmentCredentialsProvider: AWSCredentialsProvider {
    public let name = "environment"
    let value: AWSCredentials?

    public init(environment: [String: String]) {
        if let key = setting(environment, "AWS_ACCESS_KEY_ID"), let secret = setting(environment, "AWS_SECRET_ACCESS_KEY") {
            value = AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: setting(environment, "AWS_SESSION_TOKEN"),
                                   expiration: nil, source: "environment")
        } else {
            value = nil
        }
    }

    public func credentials() async throws(CloudError) -> AWSCredentials {
        guard let value else { throw .noCredentials(tried: ["environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"]) }
        return value
    }
}
