import AWSCloud
import Foundation
import NetModel
import Testing
import TestSupport

/// IMDSClient against the simulator's IMDSv2 server.
@Suite struct IMDSTests {
    func client(_ sim: CloudSimulator, retry: RetryPolicy = fastRetry, timeout: Duration = roomyTimeout) -> IMDSClient {
        IMDSClient(endpoint: sim.imdsURL, http: realHTTP, logger: quiet, retry: retry, requestTimeout: timeout)
    }

    @Test func instanceMetadataMatchesTheSimulator() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let trunk = try #require(sim.createENI(type: "trunk", attach: true))
            let state = try #require(sim.state())
            let meta = try await client(sim).instanceMetadata()

            #expect(meta.instanceID == state.instanceID)
            #expect(meta.region == state.region)
            #expect(meta.availabilityZone == state.availabilityZone)
            #expect(meta.primaryMAC == MACAddress(state.primaryENI.mac))
            #expect(meta.primaryIPv4 == IPv4Address(state.primaryENI.ip))
            #expect(Set(meta.interfaces.map(\.mac)) == Set(state.enis.compactMap { MACAddress($0.mac) }))
            #expect(meta.interfaces.count == 2)
            for eni in state.enis {
                let i = try #require(meta.interfaces.first { $0.mac == MACAddress(eni.mac) })
                #expect(i.interfaceID == eni.eniID)
                #expect(i.deviceNumber == eni.deviceIndex)
                #expect(i.subnetID == state.subnetID)
                #expect(i.subnetCIDR == IPPrefix(state.subnetCIDR))
                #expect(i.vpcID == state.vpcID)
                #expect(i.vpcCIDRs == state.vpcCIDRs.compactMap { IPPrefix($0) })
                #expect(i.localIPv4s.first == IPv4Address(eni.ip))
                #expect(i.networkCard == 0)
            }
            #expect(meta.primary?.interfaceID == state.primaryENI.eniID)
            #expect(meta.interfaces.contains { $0.interfaceID == trunk.eniID && $0.deviceNumber == trunk.deviceIndex })
        }
    }

    @Test func oneTokenServesAWholeRead() async throws {
        try await withSimulator { (sim) async throws in
            let imds = client(sim)
            _ = try await imds.instanceMetadata()
            var counts = sim.requests()
            #expect(counts.tokenPUTs == 1)
            #expect(counts.imdsGETs >= 13)  // 5 instance facts, the MAC list, 7+ per interface
            _ = try await imds.instanceMetadata()
            counts = sim.requests()
            #expect(counts.tokenPUTs == 1, "the second read reuses the token")
        }
    }

    @Test func concurrentReadersShareOneTokenFetch() async throws {
        try await withSimulator { (sim) async throws in
            let imds = client(sim)
            try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<12 { group.addTask { try await imds.get("instance-id") } }
                for try await id in group { #expect(id == sim.initial.instanceID) }
            }
            #expect(sim.requests().tokenPUTs == 1)
        }
    }

    @Test func anExpiredTokenIsReplacedWithExactlyOneNewOne() async throws {
        try await withSimulator { (sim) async throws in
            let imds = client(sim)
            _ = try await imds.get("instance-id")
            sim.expireTokens()
            sim.resetCounts()
            let meta = try await imds.instanceMetadata()
            #expect(meta.instanceID == sim.initial.instanceID)
            let counts = sim.requests()
            #expect(counts.tokenPUTs == 1)
            #expect(counts.imds["GET /latest/meta-data/instance-id"] == 2, "the refused GET and its one repeat")
        }
    }

    @Test(arguments: [500, 429, 503])
    func transientFaultsAreRetried(status: Int) async throws {
        try await withSimulator { (sim) async throws in
            sim.imdsFault(status: status, count: 2)
            let region = try await client(sim).get("placement/region")
            #expect(region == sim.initial.region)
            // Both faults hit token PUTs (the first thing a fresh client sends); the third got through.
            #expect(sim.requests().tokenPUTs == 3)
        }
    }

    @Test func faultsBeyondTheRetryBoundFailTyped() async throws {
        try await withSimulator { (sim) async throws in
            sim.imdsFault(status: 503, count: fastRetry.maxAttempts + 3)
            let imds = client(sim)
            let error = await cloudError { () throws(CloudError) in try await imds.get("instance-id") }
            guard case .http(503, let url)? = error else { Issue.record("expected .http(503), got \(String(describing: error))"); return }
            #expect(url.hasPrefix(sim.imdsURL))
            #expect(sim.requests().tokenPUTs == fastRetry.maxAttempts, "exactly the bounded number of attempts")
        }
    }

    @Test func notFoundIsNotRetried() async throws {
        try await withSimulator { (sim) async throws in
            let imds = client(sim)
            let error = await cloudError { () throws(CloudError) in try await imds.get("no/such/key") }
            #expect(error == .http(status: 404, url: sim.imdsURL + "/latest/meta-data/no/such/key"))
            #expect(sim.requests().imds["GET /latest/meta-data/no/such/key"] == 1)
            #expect(try await imds.getIfPresent("no/such/key") == nil)
        }
    }

    @Test func slowAnswersTimeOut() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let retry = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(10), maxDelay: .milliseconds(10), jitter: .none)
            sim.imdsFault(status: 0, count: retry.maxAttempts, delay: 10)
            let imds = client(sim, retry: retry, timeout: .milliseconds(300))
            let started = ContinuousClock.now
            let error = await cloudError { () throws(CloudError) in try await imds.get("instance-id") }
            guard case .timeout(let url)? = error else { Issue.record("expected .timeout, got \(String(describing: error))"); return }
            #expect(url.hasPrefix(sim.imdsURL))
            #expect(ContinuousClock.now - started < .seconds(8), "gave up at the deadlines, not when the server answered")
        }
    }

    @Test func aNewVPCCIDRShows() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let imds = client(sim)
            let mac = try #require(MACAddress(sim.initial.primaryENI.mac))
            #expect(try await imds.vpcCIDRs(mac: mac) == [IPPrefix("10.0.0.0/16")])
            sim.addVPCCIDR("100.64.0.0/16")
            #expect(try await imds.vpcCIDRs(mac: mac) == [IPPrefix("10.0.0.0/16"), IPPrefix("100.64.0.0/16")])
        }
    }

    @Test func aDetachedENIIsNoLongerListed() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let eni = try #require(sim.createENI(type: "interface", attach: true))
            let imds = client(sim)
            #expect(try await imds.macs().count == 2)
            sim.detachENI(eni.eniID)
            #expect(try await imds.macs() == [MACAddress(sim.initial.primaryENI.mac)])
        }
    }

    /// A single-card instance has no network-card key: nil, not an error. Canned answers.
    @Test func missingNetworkCardIsNil() async throws {
        let mac = "0a:00:00:00:00:01"
        let answers: [String: String] = [
            "device-number": "0", "interface-id": "eni-1", "subnet-id": "subnet-1", "subnet-ipv4-cidr-block": "10.0.0.0/19",
            "vpc-id": "vpc-1", "vpc-ipv4-cidr-blocks": "10.0.0.0/16\n100.64.0.0/16", "local-ipv4s": "10.0.0.5\n10.0.0.6",
        ]
        let http = RoutingStub { request in
            if request.method == "PUT" { return CloudHTTPResponse(status: 200, body: Array("tok".utf8)) }
            let key = request.url.components(separatedBy: "/\(mac)/").last ?? ""
            guard let text = answers[key] else { return CloudHTTPResponse(status: 404, body: []) }
            return CloudHTTPResponse(status: 200, body: Array(text.utf8))
        }
        let imds = IMDSClient(endpoint: "http://imds.test", http: http, logger: quiet, retry: fastRetry)
        let i = try await imds.interface(mac: try #require(MACAddress(mac)))
        #expect(i.networkCard == nil)
        #expect(i.localIPv4s == [IPv4Address("10.0.0.5"), IPv4Address("10.0.0.6")].compactMap { $0 })
        #expect(i.vpcCIDRs.count == 2)
    }

    @Test func endpointComesFromTheEnvironment() {
        #expect(IMDSClient.endpoint(environment: [:]) == "http://169.254.169.254")
        #expect(IMDSClient.endpoint(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": ""]) == "http://169.254.169.254")
        #expect(IMDSClient.endpoint(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://[fd00:ec2::254]/"]) == "http://[fd00:ec2::254]")
    }
}

/// Answers computed from the request.
struct RoutingStub: CloudHTTPTransport {
    let answer: @Sendable (CloudHTTPRequest) -> CloudHTTPResponse
    init(_ answer: @escaping @Sendable (CloudHTTPRequest) -> CloudHTTPResponse) { self.answer = answer }
    func send(_ request: CloudHTTPRequest) async throws(CloudError) -> CloudHTTPResponse { answer(request) }
}
