import AWSCloud
import Foundation
import Testing
import TestSupport

/// Each provider against the simulator (container endpoint, moto STS, IMDS role), the chain's
/// order, caching and refresh.
@Suite struct CredentialsTests {
    /// The simulator's fixed credentials (scripts/tests/cloud-sim.py NODE_CREDS and POD_CREDS).
    static let nodeKey = "ASIANODEROLE00000001", podKey = "ASIAPODIDENTITY00001"

    func tokenFile(_ text: String) -> String {
        let path = tempDir() + "/token"
        writeAtomically(text, to: path)
        return path
    }

    func imds(_ sim: CloudSimulator) -> IMDSClient {
        IMDSClient(endpoint: sim.imdsURL, http: realHTTP, logger: quiet, retry: fastRetry, requestTimeout: roomyTimeout)
    }

    func podIdentityEnvironment(_ sim: CloudSimulator, token: String = CloudSimulator.defaultContainerToken) -> [String: String] {
        ["AWS_CONTAINER_CREDENTIALS_FULL_URI": sim.containerCredentialsURL, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile(token)]
    }

    func webIdentityEnvironment(_ sim: CloudSimulator) -> [String: String] {
        ["AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06YXdzLW5vZGUifQ.c2ln"),
         "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/aws-node", "AWS_ROLE_SESSION_NAME": "ipamd-test",
         "AWS_ENDPOINT_URL_STS": sim.ec2URL]
    }

    func chain(_ environment: [String: String], _ sim: CloudSimulator?, withIMDS: Bool, clock: TestClock = TestClock()) -> AWSCredentialsChain {
        AWSCredentialsChain.standard(environment: environment, region: sim?.initial.region ?? "us-west-2", http: realHTTP,
                                     imds: withIMDS ? sim.map(imds) : nil, logger: quiet, now: clock.now)
    }

    @Test func environmentVariables() async throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token"]
        let c = try await EnvironmentCredentialsProvider(environment: env).credentials()
        #expect(c == AWSCredentials(accessKeyID: "AKIAENVIRONMENT00001", secretAccessKey: "env-secret", sessionToken: "env-token",
                                    expiration: nil, source: "environment"))
        let partial = await cloudError { () throws(CloudError) in
            try await EnvironmentCredentialsProvider(environment: ["AWS_ACCESS_KEY_ID": "AKIA"]).credentials()
        }
        guard case .noCredentials? = partial else { Issue.record("expected .noCredentials, got \(String(describing: partial))"); return }
    }

    @Test func podIdentityWithTheTokenFileReReadEachTime() async throws {
        try await withSimulator { (sim) async throws in
            let env = podIdentityEnvironment(sim)
            let provider = ContainerCredentialsProvider(environment: env, http: realHTTP, logger: quiet)
            let first = try await provider.credentials()
            #expect(first.accessKeyID == Self.podKey && first.sessionToken != nil && first.source == "container")
            let expiration = try #require(first.expiration)
            #expect(abs(expiration.timeIntervalSinceNow - 3600) < 120)

            // kubelet rotates the token: the endpoint wants the new one, and the file now has it.
            sim.containerToken("rotated-token-2")
            writeAtomically("rotated-token-2\n", to: try #require(env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]))
            #expect(try await provider.credentials().accessKeyID == Self.podKey)
            #expect(sim.requests().containerCredentials == 2)
        }
    }

    @Test func aWrongContainerTokenEndsInNoCredentials() async throws {
        try await withSimulator { (sim) async throws in
            let error = await cloudError { () throws(CloudError) in
                try await chain(podIdentityEnvironment(sim, token: "wrong-token"), sim, withIMDS: false).credentials()
            }
            guard case .noCredentials(let tried)? = error else { Issue.record("expected .noCredentials, got \(String(describing: error))"); return }
            #expect(tried.count == 3)
            #expect(tried.contains { $0.hasPrefix("container: HTTP 401") })
            #expect(tried.contains { $0.hasPrefix("environment:") } && tried.contains { $0.hasPrefix("web-identity:") })
            #expect(sim.requests().containerCredentials == 1, "a 401 is not retried")
        }
    }

    @Test func aWrongContainerTokenFallsThroughToTheInstanceRole() async throws {
        try await withSimulator { (sim) async throws in
            let c = try await chain(podIdentityEnvironment(sim, token: "wrong-token"), sim, withIMDS: true).credentials()
            #expect(c.source == "instance-role" && c.accessKeyID == Self.nodeKey)
        }
    }

    @Test func containerEndpointMustStayOnTheNodeOverHTTP() async throws {
        let env = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://198.51.100.7/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t"]
        let error = await cloudError { () throws(CloudError) in
            try await ContainerCredentialsProvider(environment: env, http: StubTransport("{}"), logger: quiet).credentials()
        }
        guard case .noCredentials(let tried)? = error else { Issue.record("expected .noCredentials, got \(String(describing: error))"); return }
        #expect(tried.first?.contains("refused") == true)
    }

    @Test func webIdentityThroughMotoSTS() async throws {
        try await withSimulator { (sim) async throws in
            let provider = WebIdentityCredentialsProvider(environment: webIdentityEnvironment(sim), region: sim.initial.region, http: realHTTP,
                                                          logger: quiet, retry: fastRetry)
            let c = try await provider.credentials()
            #expect(c.source == "web-identity" && !c.accessKeyID.isEmpty && !c.secretAccessKey.isEmpty && c.sessionToken != nil)
            #expect(c.expiration.map { $0 > Date() } == true)
            let request = try #require(sim.lastEC2Request())
            #expect(request.header("Authorization") == nil, "AssumeRoleWithWebIdentity is unsigned")
            #expect(request.body.hasPrefix("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Faws-node&RoleSessionName=ipamd-test&WebIdentityToken="))
            #expect(sim.requests().ec2["AssumeRoleWithWebIdentity"] == 1)
        }
    }

    @Test func webIdentityRetriesThrottling() async throws {
        try await withSimulator { (sim) async throws in
            sim.ec2Fault(code: "Throttling", status: 400, count: 2)
            let provider = WebIdentityCredentialsProvider(environment: webIdentityEnvironment(sim), region: sim.initial.region, http: realHTTP,
                                                          logger: quiet, retry: fastRetry)
            #expect(try await provider.credentials().sessionToken != nil)
            #expect(sim.requests().ec2["AssumeRoleWithWebIdentity"] == 3)
        }
    }

    @Test func stsEndpointPrecedence() {
        #expect(WebIdentityCredentialsProvider.stsEndpoint(environment: [:], region: "eu-north-1") == "https://sts.eu-north-1.amazonaws.com")
        #expect(WebIdentityCredentialsProvider.stsEndpoint(environment: ["AWS_ENDPOINT_URL": "http://all"], region: "r") == "http://all")
        #expect(WebIdentityCredentialsProvider.stsEndpoint(environment: ["AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_STS": "http://sts"],
                                                           region: "r") == "http://sts")
        #expect(AWSEnvironment.region(["AWS_DEFAULT_REGION": "eu-west-3"]) == "eu-west-3")
        #expect(AWSEnvironment.region(["AWS_DEFAULT_REGION": "eu-west-3", "AWS_REGION": "us-east-2"]) == "us-east-2")
        #expect(AWSEnvironment.region([:]) == nil)
    }

    @Test func instanceRoleFromIMDS() async throws {
        try await withSimulator { (sim) async throws in
            let c = try await InstanceRoleCredentialsProvider(imds: imds(sim)).credentials()
            #expect(c.accessKeyID == Self.nodeKey && c.sessionToken != nil && c.source == "instance-role")
            #expect(abs((c.expiration ?? .distantPast).timeIntervalSinceNow - 3600) < 120)
            let counts = sim.requests()
            #expect(counts.imds["GET /latest/meta-data/iam/security-credentials/"] == 1)
            #expect(counts.imds["GET /latest/meta-data/iam/security-credentials/\(sim.initial.role)"] == 1)
        }
    }

    @Test func chainOrderFollowsTheSDKs() async throws {
        try await withSimulator { (sim) async throws in
            let env = ["AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001", "AWS_SECRET_ACCESS_KEY": "env-secret"]
            let pod = podIdentityEnvironment(sim)
            let web = webIdentityEnvironment(sim)

            #expect(try await chain(env.merging(web) { $1 }.merging(pod) { $1 }, sim, withIMDS: true).credentials().source == "environment")
            #expect(try await chain(web.merging(pod) { $1 }, sim, withIMDS: true).credentials().source == "web-identity")
            #expect(try await chain(pod, sim, withIMDS: true).credentials().source == "container")
            #expect(try await chain([:], sim, withIMDS: true).credentials().source == "instance-role")
            // Each later source was asked only when every earlier one had nothing.
            let counts = sim.requests()
            #expect(counts.ec2["AssumeRoleWithWebIdentity"] == 1)
            #expect(counts.containerCredentials == 1)
            #expect(counts.imds["GET /latest/meta-data/iam/security-credentials/"] == 1)
            // AWS_EC2_METADATA_DISABLED leaves the instance role out.
            let disabled = chain(["AWS_EC2_METADATA_DISABLED": "true"], sim, withIMDS: true)
            #expect(disabled.providers.map(\.name) == ["environment", "web-identity", "container"])
        }
    }

    @Test func cachedUntilShortlyBeforeExpiryThenRefreshed() async throws {
        try await withSimulator { (sim) async throws in
            let clock = TestClock()
            let c = chain(podIdentityEnvironment(sim), sim, withIMDS: false, clock: clock)
            let first = try await c.credentials()
            let expiration = try #require(first.expiration)
            clock.advance(expiration.timeIntervalSince(clock.now()) - 301)  // 5 min + 1 s before expiry
            #expect(try await c.credentials() == first)
            #expect(sim.requests().containerCredentials == 1)
            clock.advance(2)  // inside the 5-minute window
            _ = try await c.credentials()
            #expect(sim.requests().containerCredentials == 2)
        }
    }

    @Test func concurrentCallersShareOneFetch() async throws {
        try await withSimulator { (sim) async throws in
            let c = chain(podIdentityEnvironment(sim), sim, withIMDS: false)
            try await withThrowingTaskGroup(of: AWSCredentials.self) { group in
                for _ in 0..<16 { group.addTask { try await c.credentials() } }
                for try await creds in group { #expect(creds.accessKeyID == Self.podKey) }
            }
            #expect(sim.requests().containerCredentials == 1)
        }
    }

    @Test func aFailedRefreshKeepsCredentialsThatStillWork() async throws {
        try await withSimulator { (sim) async throws in
            let clock = TestClock()
            let c = chain(podIdentityEnvironment(sim), sim, withIMDS: false, clock: clock)
            let first = try await c.credentials()
            let expiration = try #require(first.expiration)
            sim.containerToken("something-else")  // every refresh now gets 401
            clock.advance(expiration.timeIntervalSince(clock.now()) - 60)
            #expect(try await c.credentials() == first)
            #expect(sim.requests().containerCredentials == 2, "the refresh was tried")
            clock.advance(61)  // expired: nothing to fall back on
            let error = await cloudError { () throws(CloudError) in try await c.credentials() }
            guard case .noCredentials? = error else { Issue.record("expected .noCredentials, got \(String(describing: error))"); return }
        }
    }

    @Test func credentialsWithoutExpiryAreNeverRefetched() async throws {
        let clock = TestClock()
        let counting = CountingProvider()
        let c = AWSCredentialsChain(providers: [counting], logger: quiet, now: clock.now)
        _ = try await c.credentials()
        clock.advance(86400 * 365)
        _ = try await c.credentials()
        #expect(counting.calls == 1)
        await c.invalidate()
        _ = try await c.credentials()
        #expect(counting.calls == 2)
    }
}

final class CountingProvider: AWSCredentialsProvider, @unchecked Sendable {
    // @unchecked: `count` is only touched under `lock`.
    let name = "counting"
    private let lock = NSLock()
    private var count = 0
    var calls: Int { lock.lock(); defer { lock.unlock() }; return count }
    func credentials() async throws(CloudError) -> AWSCredentials {
        lock.withLock { count += 1 }
        return AWSCredentials(accessKeyID: "AKIACOUNTING00000001", secretAccessKey: "s")
    }
}
