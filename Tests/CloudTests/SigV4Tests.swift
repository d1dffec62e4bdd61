import AWSCloud
import Foundation
import Testing

/// One request to sign, with the time both signers are given.
struct SigningCase: Sendable {
    var name: String
    var method: String
    var url: String
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    var accessKey = "AKIDEXAMPLE"
    var secretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    var token: String?
    var region: String
    var service: String
    /// Seconds since the epoch, and the same instant as X-Amz-Date text (written independently
    /// of the signer's date code, which this also checks).
    var epoch: TimeInterval
    var amzDate: String

    var credentials: AWSCredentials { AWSCredentials(accessKeyID: accessKey, secretAccessKey: secretKey, sessionToken: token) }
}

/// The answer of scripts/tests/sigv4-botocore.py for one case.
struct BotocoreSignature {
    var authorization: String
    var amzDate: String
    var securityToken: String?
    var signedHeaders: String
    var canonicalRequest: String
}

/// Signs `cases` with botocore's SigV4Auth in a python3 child process.
func botocoreSignatures(_ cases: [SigningCase]) throws -> [BotocoreSignature] {
    let input: [[String: Any]] = cases.map { c in
        ["method": c.method, "url": c.url, "headers": c.headers.map { [$0.name, $0.value] },
         "body": Data(c.body).base64EncodedString(), "accessKey": c.accessKey, "secretKey": c.secretKey,
         "token": c.token as Any? ?? NSNull(), "region": c.region, "service": c.service, "time": c.amzDate]
    }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/tests/sigv4-botocore.py").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script]
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    stdin.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: input))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let list = try JSONSerialization.jsonObject(with: output) as? [[String: Any]] else {
        throw BotocoreFailure(status: process.terminationStatus)
    }
    return list.map {
        BotocoreSignature(authorization: $0["authorization"] as? String ?? "", amzDate: $0["amzDate"] as? String ?? "",
                          securityToken: $0["securityToken"] as? String, signedHeaders: $0["signedHeaders"] as? String ?? "",
                          canonicalRequest: $0["canonicalRequest"] as? String ?? "")
    }
}

struct BotocoreFailure: Error { var status: Int32 }

@Suite struct SigV4Tests {
    static let form = ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")

    /// EC2 and STS as the clients send them, and the corners of canonicalisation.
    static let cases: [SigningCase] = {
        let describe = URIEncoding.form([("Action", "DescribeNetworkInterfaces"), ("Version", "2016-11-15"),
                                         ("Filter.1.Name", "attachment.instance-id"), ("Filter.1.Value.1", "i-0123456789abcdef0")])
        let assume = URIEncoding.form([("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"),
                                       ("RoleArn", "arn:aws:iam::123456789012:role/node role"), ("RoleSessionName", "s=1/2~3"),
                                       ("WebIdentityToken", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln+/=")])
        func q(_ s: String) -> String { URIEncoding.encode(s) }
        return [
            SigningCase(name: "EC2 POST DescribeNetworkInterfaces", method: "POST", url: "https://ec2.us-west-2.amazonaws.com/",
                        headers: [form], body: Array(describe.utf8), region: "us-west-2", service: "ec2",
                        epoch: 1_440_938_160, amzDate: "20150830T123600Z"),
            SigningCase(name: "EC2 POST with session token", method: "POST", url: "https://ec2.eu-west-1.amazonaws.com/",
                        headers: [form], body: Array(describe.utf8), accessKey: "ASIAQEXAMPLEKEY12345",
                        token: "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLXdlc3QtMiJHMEUCIQ+token=", region: "eu-west-1", service: "ec2",
                        epoch: 1_709_251_199, amzDate: "20240229T235959Z"),
            SigningCase(name: "STS POST AssumeRoleWithWebIdentity", method: "POST", url: "https://sts.us-east-1.amazonaws.com/",
                        headers: [form], body: Array(assume.utf8), token: "sts-session-token", region: "us-east-1", service: "sts",
                        epoch: 946_684_800, amzDate: "20000101T000000Z"),
            SigningCase(name: "GET query with space / ~ = and unicode",
                        method: "GET",
                        url: "https://ec2.eu-central-1.amazonaws.com/?Action=DescribeInstances&Version=2016-11-15&Filter.1.Value.1=\(q("a b/c~d=e"))&\(q("Tägs ✓"))=\(q("ünïcødé 値"))",
                        region: "eu-central-1", service: "ec2", epoch: 2_147_483_648, amzDate: "20380119T031408Z"),
            SigningCase(name: "GET repeated keys, sorted by value", method: "GET",
                        url: "https://sts.ap-southeast-2.amazonaws.com/?b=2&a=z&a=y&a=x&Action=GetCallerIdentity&Version=2011-06-15&c=",
                        region: "ap-southeast-2", service: "sts", epoch: 1_767_225_599, amzDate: "20251231T235959Z"),
            SigningCase(name: "http, non-default port, token", method: "POST", url: "http://127.0.0.1:4566/",
                        headers: [form], body: Array(describe.utf8), token: "local-token", region: "us-east-1", service: "ec2",
                        epoch: 1_560_585_909, amzDate: "20190615T080509Z"),
            SigningCase(name: "https, non-default port", method: "GET",
                        url: "https://ec2.us-west-2.amazonaws.com:8443/?Action=DescribeRegions&Version=2016-11-15",
                        token: "tok/with+slash=", region: "us-west-2", service: "ec2", epoch: 1_940_948_400, amzDate: "20310704T162000Z"),
            SigningCase(name: "empty body POST", method: "POST", url: "https://sts.amazonaws.com/", headers: [form],
                        region: "us-east-1", service: "sts", epoch: 1_440_938_160, amzDate: "20150830T123600Z"),
            SigningCase(name: "path with dot segments, double slash, encoded space and unicode", method: "GET",
                        url: "https://example.amazonaws.com/a/./b/../c%20d//%C3%A9~x/", region: "us-east-1", service: "ec2",
                        epoch: 1_709_251_199, amzDate: "20240229T235959Z"),
            SigningCase(name: "raw unicode and space in the path", method: "GET", url: "https://example.amazonaws.com/ü/ö ä",
                        region: "us-east-1", service: "ec2", epoch: 946_684_800, amzDate: "20000101T000000Z"),
            SigningCase(name: "header whitespace, case, repeats, unsigned ones", method: "POST",
                        url: "https://ec2.sa-east-1.amazonaws.com/",
                        headers: [form, ("X-Custom", "  a   b\tc  "), ("x-custom", "second"), ("User-Agent", "aws-sg-pods/1"),
                                  ("X-Amzn-Trace-Id", "Root=1-abc"), ("Accept", "*/*")],
                        body: Array(describe.utf8), token: "t", region: "sa-east-1", service: "ec2",
                        epoch: 1_560_585_909, amzDate: "20190615T080509Z"),
            SigningCase(name: "explicit default port, upper-case host", method: "POST",
                        url: "https://EC2.US-GOV-WEST-1.AMAZONAWS.COM:443/", headers: [form], body: Array(describe.utf8),
                        region: "us-gov-west-1", service: "ec2", epoch: 2_147_483_648, amzDate: "20380119T031408Z"),
            SigningCase(name: "query keys without values", method: "GET", url: "https://sts.cn-north-1.amazonaws.com.cn/?acl&a=&b",
                        region: "cn-north-1", service: "sts", epoch: 1_767_225_599, amzDate: "20251231T235959Z"),
            SigningCase(name: "binary body", method: "PUT", url: "http://localhost:8080/upload",
                        body: [0, 1, 2, 0xff, 0xfe, 0x80, 10, 13], token: "binary-token", region: "me-south-1", service: "ec2",
                        epoch: 1_940_948_400, amzDate: "20310704T162000Z"),
            SigningCase(name: "encoded + * / % in the query", method: "GET",
                        url: "https://ec2.ap-northeast-1.amazonaws.com/?q=%2B%2A%2F%25&r=~%20", region: "ap-northeast-1", service: "ec2",
                        epoch: 1_440_938_160, amzDate: "20150830T123600Z"),
            SigningCase(name: "IPv6 host with port", method: "POST", url: "http://[::1]:8080/", headers: [form],
                        body: Array(describe.utf8), token: "v6-token", region: "us-west-2", service: "ec2",
                        epoch: 1_709_251_199, amzDate: "20240229T235959Z"),
        ]
    }()

    @Test func matchesBotocoreByteForByte() throws {
        let theirs = try botocoreSignatures(Self.cases)
        try #require(theirs.count == Self.cases.count)
        var compared = 0
        for (c, expected) in zip(Self.cases, theirs) {
            let ours = try SigV4Signer.sign(method: c.method, url: c.url, headers: c.headers, body: c.body, credentials: c.credentials,
                                            region: c.region, service: c.service, date: Date(timeIntervalSince1970: c.epoch))
            let sent = { (name: String) in ours.headers.filter { $0.name.lowercased() == name }.map(\.value) }
            #expect(ours.authorization == expected.authorization, "\(c.name)")
            #expect(sent("authorization") == [expected.authorization], "\(c.name)")
            #expect(ours.amzDate == expected.amzDate && sent("x-amz-date") == [expected.amzDate], "\(c.name)")
            #expect(sent("x-amz-security-token") == (expected.securityToken.map { [$0] } ?? []), "\(c.name)")
            #expect(ours.signedHeaders == expected.signedHeaders, "\(c.name)")
            if ours.canonicalRequest != expected.canonicalRequest {
                // Fake test credentials only; the token is masked all the same.
                let mask = { (s: String) in c.token.map { s.replacingOccurrences(of: $0, with: "<token>") } ?? s }
                Issue.record("\(c.name): canonical requests differ\nours:\n\(mask(ours.canonicalRequest))\nbotocore:\n\(mask(expected.canonicalRequest))")
            }
            compared += 1
        }
        print("SigV4: \(compared) requests compared byte for byte with botocore's SigV4Auth")
        #expect(compared >= 12)
    }

    /// AWS's published test suite, case get-vanilla: independent of botocore.
    @Test func awsTestSuiteGetVanilla() throws {
        let signed = try SigV4Signer.sign(method: "GET", url: "https://example.amazonaws.com/", headers: [], body: [],
                                          credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                          region: "us-east-1", service: "service", date: Date(timeIntervalSince1970: 1_440_938_160))
        #expect(signed.authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func signingAgainReplacesStaleSignerHeaders() throws {
        let creds = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "new-token")
        let stale: [(name: String, value: String)] = [("Authorization", "old"), ("X-Amz-Date", "19990101T000000Z"), ("x-amz-security-token", "old-token")]
        let signed = try SigV4Signer.sign(method: "GET", url: "https://ec2.us-west-2.amazonaws.com/", headers: stale, body: [],
                                          credentials: creds, region: "us-west-2", service: "ec2", date: Date(timeIntervalSince1970: 0))
        #expect(signed.headers.filter { $0.name.lowercased() == "authorization" }.map(\.value) == [signed.authorization])
        #expect(signed.headers.filter { $0.name.lowercased() == "x-amz-date" }.map(\.value) == ["19700101T000000Z"])
        #expect(signed.headers.filter { $0.name.lowercased() == "x-amz-security-token" }.map(\.value) == ["new-token"])
    }

    /// Where we knowingly differ from botocore: it copies a URL's query pairs as written, we
    /// re-encode them, so an over-encoded `%7E` or a lower-case `%2f` signs as the service
    /// canonicalises it (AWS: never encode unreserved characters; upper-case hex).
    @Test func queryIsCanonicalisedNotCopied() throws {
        let creds = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")
        let sign = { (url: String) throws(CloudError) in
            try SigV4Signer.sign(method: "GET", url: url, headers: [], body: [], credentials: creds, region: "us-east-1", service: "ec2",
                                 date: Date(timeIntervalSince1970: 0))
        }
        let loose = try sign("https://ec2.amazonaws.com/?r=%7E%2f&a%2Db=1")
        let canonical = try sign("https://ec2.amazonaws.com/?a-b=1&r=~%2F")
        #expect(loose.canonicalRequest.split(separator: "\n")[2] == "a-b=1&r=~%2F")
        #expect(loose.authorization == canonical.authorization)
    }

    @Test func relativeURLIsRefused() async {
        let error = await cloudError { () throws(CloudError) in
            try SigV4Signer.sign(method: "GET", url: "/no-host", headers: [], body: [], credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "b"),
                                 region: "r", service: "s", date: Date())
        }
        guard case .malformed = error else { Issue.record("expected .malformed, got \(String(describing: error))"); return }
    }
}
