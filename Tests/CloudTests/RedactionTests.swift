import AWSCloud
import Foundation
import Testing
import TestSupport

/// No secret or session token in any text form of credentials, in any error, in any log line.
@Suite struct RedactionTests {
    static let secret = "SECRETsecretSECRETsecret0123456789abcdef"
    static let token = "TOKENtokenTOKENtoken/session+token=="
    static let credentials = AWSCredentials(accessKeyID: "ASIAREDACTIONTEST001", secretAccessKey: secret, sessionToken: token,
                                            expiration: Date(timeIntervalSince1970: 1_709_251_199), source: "test")

    func assertClean(_ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!text.contains(Self.secret), "\(what) shows the secret", sourceLocation: sourceLocation)
        #expect(!text.contains(Self.token), "\(what) shows the session token", sourceLocation: sourceLocation)
        #expect(!text.contains("ASIAREDACTIONTEST001"), "\(what) shows the whole access key id", sourceLocation: sourceLocation)
    }

    @Test func everyTextFormOfCredentialsIsRedacted() {
        let c = Self.credentials
        var dumped = ""
        dump(c, to: &dumped)
        for (what, text) in [("description", c.description), ("debugDescription", c.debugDescription), ("interpolation", "\(c)"),
                             ("String(describing:)", String(describing: c)), ("String(reflecting:)", String(reflecting: c)),
                             ("dump", dumped), ("optional", "\(Optional(c) as Any)"), ("array", "\([c])")] {
            assertClean(text, what)
        }
        #expect(c.description.contains("<redacted>") && c.description.contains("ASIA…T001"))
        #expect(c.description.contains("2024-02-29T23:59:59Z"))
    }

    /// Errors from the paths where a secret or token is at hand: what each says must not carry them.
    @Test func errorsNeverCarrySecrets() async throws {
        var errors: [CloudError] = []
        func collect<T>(_ body: () async throws(CloudError) -> T) async {
            if let e = await cloudError(body) { errors.append(e) }
        }
        // A credentials document that quotes the secret but lacks the key id, then one with a bad expiry.
        let partial = #"{"SecretAccessKey":"\#(Self.secret)","Token":"\#(Self.token)"}"#
        let badExpiry = #"{"AccessKeyId":"ASIAREDACTIONTEST001","SecretAccessKey":"\#(Self.secret)","Token":"\#(Self.token)","Expiration":"soon \#(Self.secret)"}"#
        for body in [partial, badExpiry, "not json \(Self.secret)"] {
            let env = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": Self.token]
            await collect { () throws(CloudError) in
                try await ContainerCredentialsProvider(environment: env, http: StubTransport(body), logger: quiet).credentials()
            }
        }
        // A 401 whose page echoes the token we sent.
        let env = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": Self.token]
        await collect { () throws(CloudError) in
            try await ContainerCredentialsProvider(environment: env, http: StubTransport(status: 401, "bad token \(Self.token)"), logger: quiet).credentials()
        }
        // The same through the chain: the noCredentials summary.
        await collect { () throws(CloudError) in
            try await AWSCredentialsChain.standard(environment: env, region: "us-west-2", http: StubTransport(status: 401, "bad \(Self.token)"),
                                                   imds: nil, logger: quiet).credentials()
        }
        // IMDS role document with the secret and Code != Success, and an STS answer without Credentials.
        let roleDoc = #"{"Code":"Failure","AccessKeyId":"ASIAREDACTIONTEST001","SecretAccessKey":"\#(Self.secret)"}"#
        let imds = IMDSClient(endpoint: "http://imds.test", http: RoutingStub { r in
            if r.method == "PUT" { return CloudHTTPResponse(status: 200, body: Array("t".utf8)) }
            return CloudHTTPResponse(status: 200, body: Array((r.url.hasSuffix("security-credentials/") ? "role" : roleDoc).utf8))
        }, logger: quiet, retry: fastRetry)
        await collect { () throws(CloudError) in try await InstanceRoleCredentialsProvider(imds: imds).credentials() }
        let tokenPath = tempDir() + "/web"
        writeAtomically(Self.token, to: tokenPath)
        let webEnv = ["AWS_WEB_IDENTITY_TOKEN_FILE": tokenPath, "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"]
        await collect { () throws(CloudError) in
            try await WebIdentityCredentialsProvider(environment: webEnv, region: "us-west-2",
                                                     http: StubTransport("<AssumeRoleWithWebIdentityResponse><Secret>\(Self.secret)</Secret></AssumeRoleWithWebIdentityResponse>"),
                                                     logger: quiet, retry: fastRetry).credentials()
        }
        // EC2 signed with these credentials, refused.
        let ec2 = EC2Client(endpoint: "https://ec2.us-west-2.amazonaws.com", region: "us-west-2", credentials: StaticCredentialsProvider(Self.credentials),
                            http: StubTransport(status: 401, "<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors></Response>"),
                            logger: quiet, retry: fastRetry)
        await collect { () throws(CloudError) in try await ec2.describeInstanceNetworkInterfaces(instanceID: "i-1") }

        #expect(errors.count == 8)
        for e in errors {
            assertClean(String(describing: e), "error \(e)")
            assertClean(String(reflecting: e), "error debug text")
            assertClean("\(e)", "error interpolation")
        }
    }

    /// Everything the clients log at trace level, over a full run against the simulator.
    @Test func logsNeverCarrySecrets() async throws {
        try await withSimulator { (sim) async throws in
            let logs = CapturedLogs()
            let logger = logs.logger
            let http = AsyncHTTPClientTransport.shared(logger: logger)
            let imds = IMDSClient(endpoint: sim.imdsURL, http: http, logger: logger, retry: fastRetry, requestTimeout: roomyTimeout)
            let tokenPath = tempDir() + "/token"
            writeAtomically(CloudSimulator.defaultContainerToken, to: tokenPath)
            let env = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": sim.containerCredentialsURL, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenPath]
            sim.imdsFault(status: 500, count: 2)
            sim.ec2Fault(code: "RequestLimitExceeded", status: 503, count: 2)
            let chain = AWSCredentialsChain.standard(environment: env, region: sim.initial.region, http: http, imds: imds, logger: logger)
            let ec2 = EC2Client(endpoint: sim.ec2URL, region: sim.initial.region, credentials: chain, http: http, logger: logger, retry: fastRetry)
            _ = try await imds.instanceMetadata()
            let used = try await chain.credentials()
            _ = try await ec2.describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID)
            let role = try await InstanceRoleCredentialsProvider(imds: imds).credentials()

            let lines = logs.all
            #expect(!lines.isEmpty)
            for line in lines {
                for secret in [used.secretAccessKey, used.sessionToken ?? "-", role.secretAccessKey, role.sessionToken ?? "-",
                               CloudSimulator.defaultContainerToken] {
                    #expect(!line.contains(secret), "a log line shows a credential: \(line.prefix(60))…")
                }
            }
        }
    }
}
