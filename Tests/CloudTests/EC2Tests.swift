import AWSCloud
import Foundation
import NetModel
import Testing
import TestSupport

/// EC2Client against moto (through the simulator), and its parsing and paging on canned answers.
@Suite struct EC2Tests {
    static let credentials = AWSCredentials(accessKeyID: "AKIATESTEC2CLIENT001", secretAccessKey: "ec2-test-secret-key-0000000000000000000")
    static let fixedDate = Date(timeIntervalSince1970: 1_709_251_199)  // 2024-02-29T23:59:59Z

    func client(_ sim: CloudSimulator, credentials: AWSCredentials = credentials, retry: RetryPolicy = fastRetry) -> EC2Client {
        EC2Client(endpoint: sim.ec2URL, region: sim.initial.region, credentials: StaticCredentialsProvider(credentials), http: realHTTP,
                  logger: quiet, retry: retry, attemptTimeout: roomyTimeout, now: { Self.fixedDate })
    }

    @Test func findsThePrimaryENIAndATrunk() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let trunk = try #require(sim.createENI(type: "trunk", attach: true))
            let plain = try #require(sim.createENI(type: "interface", attach: true))
            sim.createENI(type: "interface", attach: false)  // in the subnet, not on the instance
            let enis = try await client(sim).describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID)
            #expect(enis.count == 3)

            let primary = try #require(enis.first { $0.id == sim.initial.primaryENI.eniID })
            #expect(primary.mac == MACAddress(sim.initial.primaryENI.mac))
            #expect(primary.deviceIndex == 0)
            #expect(primary.interfaceType == "interface" && !primary.isTrunk)
            #expect(primary.subnetID == sim.initial.subnetID && primary.vpcID == sim.initial.vpcID)
            #expect(primary.privateIPv4s.contains(try #require(IPv4Address(sim.initial.primaryENI.ip))))

            let foundTrunk = try #require(enis.first { $0.id == trunk.eniID })
            #expect(foundTrunk.isTrunk)
            #expect(foundTrunk.deviceIndex == trunk.deviceIndex)
            #expect(foundTrunk.mac == MACAddress(trunk.mac))
            #expect(enis.first { $0.id == plain.eniID }?.isTrunk == false)
        }
    }

    @Test func aDetachedENIIsGone() async throws {
        try await withSimulator(fresh: true) { (sim) async throws in
            let eni = try #require(sim.createENI(type: "trunk", attach: true))
            let ec2 = client(sim)
            #expect(try await ec2.describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID).count == 2)
            sim.detachENI(eni.eniID)
            #expect(try await ec2.describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID).map(\.id) == [sim.initial.primaryENI.eniID])
        }
    }

    @Test(arguments: ["RequestLimitExceeded", "Throttling", "InternalError"])
    func throttlingRecoversWithinTheRetryBound(code: String) async throws {
        try await withSimulator { (sim) async throws in
            sim.ec2Fault(code: code, status: code == "InternalError" ? 500 : 503, count: 2)
            let ec2 = client(sim)
            let enis = try await ec2.describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID)
            #expect(enis.count == 1)
            #expect(ec2.calls.count("DescribeNetworkInterfaces") == 3)
            #expect(sim.requests().ec2["DescribeNetworkInterfaces"] == 3)
        }
    }

    @Test func throttlingBeyondTheBoundSurfacesTheAPIError() async throws {
        try await withSimulator { (sim) async throws in
            sim.ec2Fault(code: "RequestLimitExceeded", status: 503, count: fastRetry.maxAttempts + 2)
            let ec2 = client(sim)
            let error = await cloudError { () throws(CloudError) in try await ec2.describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID) }
            guard case .api(let status, let code, let message, let requestID)? = error else {
                Issue.record("expected .api, got \(String(describing: error))"); return
            }
            #expect(code == "RequestLimitExceeded" && status == 503)
            #expect(!message.isEmpty && requestID?.isEmpty == false)
            #expect(ec2.calls.count("DescribeNetworkInterfaces") == fastRetry.maxAttempts)
            #expect(sim.requests().ec2["DescribeNetworkInterfaces"] == fastRetry.maxAttempts)
        }
    }

    @Test func aNonRetryableErrorIsNotRepeated() async throws {
        try await withSimulator { (sim) async throws in
            let ec2 = client(sim)
            let error = await cloudError { () throws(CloudError) in
                try await ec2.call(action: "DescribeNetworkInterfaces", parameters: [("NetworkInterfaceId.1", "eni-doesnotexist")])
            }
            guard case .api(let status, let code, _, _)? = error else { Issue.record("expected .api, got \(String(describing: error))"); return }
            #expect(code == "InvalidNetworkInterfaceID.NotFound" && status == 400)
            #expect(ec2.calls.count("DescribeNetworkInterfaces") == 1)
        }
    }

    @Test(arguments: [nil, "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN/+="])
    func theRequestReachesMotoSigned(sessionToken: String?) async throws {
        try await withSimulator { (sim) async throws in
            var credentials = Self.credentials
            credentials.sessionToken = sessionToken
            _ = try await client(sim, credentials: credentials).describeInstanceNetworkInterfaces(instanceID: sim.initial.instanceID)
            let request = try #require(sim.lastEC2Request())
            #expect(request.method == "POST" && request.path == "/")
            let authorization = try #require(request.header("Authorization"))
            #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/20240229/\(sim.initial.region)/ec2/aws4_request, "))
            #expect(request.header("X-Amz-Date") == "20240229T235959Z")
            #expect(request.header("X-Amz-Security-Token") == sessionToken)
            #expect(request.header("Content-Type") == "application/x-www-form-urlencoded; charset=utf-8")
            #expect(request.body == "Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=attachment.instance-id&Filter.1.Value.1=\(sim.initial.instanceID)")

            // botocore, given the request as moto received it (the headers we signed), signs it the same.
            let signed = authorization.components(separatedBy: "SignedHeaders=").last?.components(separatedBy: ",").first ?? ""
            let names = Set(signed.split(separator: ";").map(String.init))
            let headers = request.headers.filter { names.contains($0.key.lowercased()) && $0.key.lowercased() != "x-amz-security-token" }
                .map { (name: $0.key, value: $0.value) }
            let replay = SigningCase(name: "as received", method: request.method, url: sim.ec2URL + request.path, headers: headers,
                                     body: Array(request.body.utf8), accessKey: credentials.accessKeyID, secretKey: credentials.secretAccessKey,
                                     token: sessionToken, region: sim.initial.region, service: "ec2", epoch: 0, amzDate: "20240229T235959Z")
            let botocore = try #require(try botocoreSignatures([replay]).first)
            #expect(botocore.authorization == authorization)
        }
    }

    // MARK: canned answers

    static func page(_ items: [String], nextToken: String? = nil) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>req-1</requestId>
            <networkInterfaceSet>\(items.joined())</networkInterfaceSet>
            \(nextToken.map { "<nextToken>\($0)</nextToken>" } ?? "")
        </DescribeNetworkInterfacesResponse>
        """
    }

    static func item(_ id: String, mac: String, type: String? = nil, device: Int? = nil, ips: [String] = []) -> String {
        """
        <item><networkInterfaceId>\(id)</networkInterfaceId><subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId>
        \(type.map { "<interfaceType>\($0)</interfaceType>" } ?? "")<macAddress>\(mac)</macAddress>
        \(device.map { "<attachment><attachmentId>a</attachmentId><deviceIndex>\($0)</deviceIndex></attachment>" } ?? "")
        <privateIpAddressesSet>\(ips.map { "<item><privateIpAddress>\($0)</privateIpAddress><primary>true</primary></item>" }.joined())</privateIpAddressesSet>
        <groupSet><item><groupId>sg-1</groupId></item></groupSet></item>
        """
    }

    func stubClient(_ http: StubTransport, pageSize: Int? = nil) -> EC2Client {
        EC2Client(endpoint: "https://ec2.us-west-2.amazonaws.com", region: "us-west-2", credentials: StaticCredentialsProvider(Self.credentials),
                  http: http, logger: quiet, retry: fastRetry, pageSize: pageSize)
    }

    /// moto 5.2.1 answers DescribeNetworkInterfaces in one page whatever MaxResults says, so
    /// paging is checked on canned pages instead.
    @Test func followsNextTokenPages() async throws {
        let http = StubTransport(
            Self.page([Self.item("eni-1", mac: "0a:00:00:00:00:01", device: 0, ips: ["10.0.0.1", "10.0.0.2"])], nextToken: "page+2/=="),
            Self.page([Self.item("eni-2", mac: "0a:00:00:00:00:02", type: "trunk", device: 2)], nextToken: "page3"),
            Self.page([Self.item("eni-3", mac: "0a:00:00:00:00:03", type: "efa")]))
        let enis = try await stubClient(http, pageSize: 5).describeInstanceNetworkInterfaces(instanceID: "i-1")
        #expect(enis.map(\.id) == ["eni-1", "eni-2", "eni-3"])
        #expect(enis.map(\.interfaceType) == ["interface", "trunk", "efa"])
        #expect(enis[0].privateIPv4s == [IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")].compactMap { $0 })
        #expect(enis[1].deviceIndex == 2 && enis[2].deviceIndex == nil)
        let bodies = http.requests.map(\.bodyText)
        #expect(bodies.count == 3)
        #expect(bodies.allSatisfy { $0.contains("&MaxResults=5") })
        #expect(!bodies[0].contains("NextToken"))
        #expect(bodies[1].hasSuffix("&NextToken=page%2B2%2F%3D%3D"))
        #expect(bodies[2].hasSuffix("&NextToken=page3"))
    }

    @Test func aRepeatedNextTokenStopsPaging() async throws {
        let http = StubTransport(Self.page([Self.item("eni-1", mac: "0a:00:00:00:00:01")], nextToken: "same"))
        let error = await cloudError { () throws(CloudError) in try await stubClient(http).describeInstanceNetworkInterfaces(instanceID: "i-1") }
        guard case .malformed? = error else { Issue.record("expected .malformed, got \(String(describing: error))"); return }
        #expect(http.requests.count == 2)
    }

    @Test func errorDocumentsBecomeTypedErrors() async throws {
        let ec2Style = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized.</Message></Error></Errors><RequestID>9b1c-ec2</RequestID></Response>
            """
        let stsStyle = """
            <ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>bad token</Message></Error><RequestId>77-sts</RequestId></ErrorResponse>
            """
        var e = await cloudError { () throws(CloudError) in try await stubClient(StubTransport(status: 403, ec2Style)).call(action: "X") }
        #expect(e == .api(status: 403, code: "UnauthorizedOperation", message: "You are not authorized.", requestID: "9b1c-ec2"))
        e = await cloudError { () throws(CloudError) in try await stubClient(StubTransport(status: 400, stsStyle)).call(action: "X") }
        #expect(e == .api(status: 400, code: "InvalidIdentityToken", message: "bad token", requestID: "77-sts"))
        // A proxy's page is no API error; 502 is retried, then reported as what it was.
        let proxy = StubTransport(status: 502, "<html><body>Bad Gateway</body></html>")
        e = await cloudError { () throws(CloudError) in try await stubClient(proxy).call(action: "X") }
        #expect(e == .http(status: 502, url: "https://ec2.us-west-2.amazonaws.com/"))
        #expect(proxy.requests.count == fastRetry.maxAttempts)
        // A 200 that is not XML.
        e = await cloudError { () throws(CloudError) in try await stubClient(StubTransport("not xml <")).call(action: "X") }
        guard case .malformed? = e else { Issue.record("expected .malformed, got \(String(describing: e))"); return }
    }

    @Test func timeoutsAreRetriedThenReported() async throws {
        let http = StubTransport([.failure(.timeout(url: "u")), .failure(.transport(url: "u", reason: "reset")),
                                  .success(CloudHTTPResponse(status: 200, body: Array(Self.page([]).utf8)))])
        #expect(try await stubClient(http).describeInstanceNetworkInterfaces(instanceID: "i-1").isEmpty)
        #expect(http.requests.count == 3)
        let always = StubTransport([.failure(.timeout(url: "u"))])
        let e = await cloudError { () throws(CloudError) in try await stubClient(always).call(action: "X") }
        #expect(e == .timeout(url: "u"))
        #expect(always.requests.count == fastRetry.maxAttempts)
        #expect(always.requests.allSatisfy { $0.timeout == .seconds(10) })
    }

    @Test func endpointPrecedence() {
        #expect(EC2Client.endpoint(environment: [:], region: "eu-west-1") == "https://ec2.eu-west-1.amazonaws.com")
        #expect(EC2Client.endpoint(environment: [:], region: "cn-north-1") == "https://ec2.cn-north-1.amazonaws.com.cn")
        #expect(EC2Client.endpoint(environment: ["AWS_ENDPOINT_URL": "http://all:1"], region: "r") == "http://all:1")
        #expect(EC2Client.endpoint(environment: ["AWS_ENDPOINT_URL": "http://all:1", "AWS_ENDPOINT_URL_EC2": "http://ec2:2/"], region: "r") == "http://ec2:2")
        #expect(EC2Client.endpoint(environment: ["AWS_ENDPOINT_URL_EC2": ""], region: "r") == "https://ec2.r.amazonaws.com")
    }
}
