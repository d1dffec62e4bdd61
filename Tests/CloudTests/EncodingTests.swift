import AWSCloud
import Foundation
import Testing
import TestSupport

/// The small pieces under the clients: percent-encoding, the XML tree, expiry times, retry delays.
@Suite struct EncodingTests {
    @Test func percentEncodingIsRFC3986() {
        #expect(URIEncoding.encode("AZaz09-_.~") == "AZaz09-_.~")
        #expect(URIEncoding.encode("a b+c/d=e&f*%") == "a%20b%2Bc%2Fd%3De%26f%2A%25")
        #expect(URIEncoding.encode("a b/c", keepSlash: true) == "a%20b/c")
        #expect(URIEncoding.encode("é✓") == "%C3%A9%E2%9C%93")
        #expect(URIEncoding.decode("a%20b%2b%zz%") == "a b+%zz%")
        #expect(URIEncoding.decode(URIEncoding.encode("ünï/=~ +")) == "ünï/=~ +")
        #expect(URIEncoding.form([("Action", "X"), ("Filter.1.Value.1", "a b")]) == "Action=X&Filter.1.Value.1=a%20b")
    }

    @Test func xmlTree() throws {
        let doc = """
            <?xml version="1.0"?>
            <R xmlns="urn:x"><set><item><id>1</id><ips><item><ip>10.0.0.1</ip></item><item><ip>10.0.0.2</ip></item></ips></item>
            <item><id> 2 </id><empty/></item></set><![CDATA[<raw>]]><x:n xmlns:x="urn:y">v &amp; w</x:n></R>
            """
        let root = try #require(XMLTreeNode.parse(Array(doc.utf8)))
        #expect(root.name == "R")
        #expect(root.all("set/item").map { $0.text("id") } == ["1", "2"])
        #expect(root.all("set/item/ips/item/ip").map(\.text) == ["10.0.0.1", "10.0.0.2"])
        #expect(root.first("set/item/empty")?.text == "")
        #expect(root.text == "<raw>")
        #expect(root.text("n") == "v & w")
        #expect(root.descendant(named: "ip")?.text == "10.0.0.1")
        #expect(XMLTreeNode.parse(Array("<a><b></a>".utf8)) == nil)
        #expect(XMLTreeNode.parse(Array("".utf8)) == nil)
    }

    /// What IMDS, the container agents and STS write for an expiry, through a container answer.
    @Test(arguments: [
        ("2024-02-29T23:59:59Z", 1_709_251_199.0), ("2024-02-29T23:59:59.250Z", 1_709_251_199.25),
        ("2024-03-01T01:59:59+02:00", 1_709_251_199.0), ("2000-01-01T00:00:00Z", 946_684_800.0), ("2038-01-19T03:14:08Z", 2_147_483_648.0),
    ])
    func expirationFormats(text: String, epoch: Double) async throws {
        let body = #"{"AccessKeyId":"ASIAEXPIRYFORMAT0001","SecretAccessKey":"s","Token":"t","Expiration":"\#(text)"}"#
        let env = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1/creds"]
        let c = try await ContainerCredentialsProvider(environment: env, http: StubTransport(body), logger: quiet).credentials()
        #expect(c.expiration?.timeIntervalSince1970 == epoch)
    }

    @Test(arguments: ["2024-02-29", "2024-13-01T00:00:00Z", "2024-02-29T23:59:59", "yesterday"])
    func badExpirationsAreRefused(text: String) async {
        let body = #"{"AccessKeyId":"ASIAEXPIRYFORMAT0001","SecretAccessKey":"s","Expiration":"\#(text)"}"#
        let env = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1/creds"]
        let error = await cloudError { () throws(CloudError) in
            try await ContainerCredentialsProvider(environment: env, http: StubTransport(body), logger: quiet).credentials()
        }
        guard case .malformed? = error else { Issue.record("expected .malformed, got \(String(describing: error))"); return }
    }

    @Test func retryDelaysDoubleUpToTheCap() {
        let p = RetryPolicy.imds
        #expect((1...6).map { p.delay(afterAttempt: $0) } == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        let jittered = RetryPolicy(maxAttempts: 5, initialDelay: .milliseconds(100), maxDelay: .seconds(1), jitter: .full)
        for attempt in 1...8 {
            let d = jittered.delay(afterAttempt: attempt)
            #expect(d >= .zero && d <= min(.milliseconds(100) * (1 << (attempt - 1)), .seconds(1)))
        }
    }
}
