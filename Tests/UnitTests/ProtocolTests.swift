import IPAMDProtocol
import NetModel
import Testing

@Suite struct FramingTests {
    /// The plugin's directly written request is what ipamd decodes, for every method and any text.
    @Test func directlyWrittenRequestDecodesToTheSameRequest() throws {
        let texts = ["", "default", "nginx-7d9f", "/var/run/netns/cni-1", "a\"b\\c\n\u{01}", "ünïcode ✓"]
        var g = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            func t() -> String { texts.randomElement(using: &g)! }
            let pod = Bool.random(using: &g) ? PodRequest(podName: t(), podNamespace: t(), podUID: t(), containerID: t(), netns: t(), ifName: t(), networkName: t()) : nil
            let r = RPCRequest(method: [.addNetwork, .delNetwork, .getNetwork, .ping].randomElement(using: &g)!, pod: pod)
            #expect(try Framing.decode(RPCRequest.self, payload: Array(r.json.utf8)) == r)
        }
    }

    /// ipamd's directly written reply is what the plugin decodes, and the bytes the encoder writes.
    @Test func directlyWrittenReplyDecodesToTheSameReply() throws {
        let texts = ["", "10.0.40.12", "0a:00:00:00:00:07", "eni-0a1b/2c", "a\"b\\c\n\u{01}", "ünïcode ✓"]
        var g = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            func t() -> String? { Bool.random(using: &g) ? texts.randomElement(using: &g)! : nil }
            let r: RPCReply = Bool.random(using: &g)
                ? RPCReply(network: Bool.random(using: &g) ? nil : PodNetwork(
                    branch: .random(using: &g), podIPv4: t(), podIPv6: t(), vlanID: .random(in: 0...4094, using: &g), branchMAC: t(),
                    branchENIID: t(), subnetCIDR: t(), subnetGatewayV4: t(), parentIfIndex: .random(in: 0...Int32.max, using: &g),
                    vpcCIDRs: (0..<Int.random(in: 0...3, using: &g)).map { _ in t() ?? "" }, externalSNAT: .random(using: &g)))
                : RPCReply(error: RPCFailure([.badRequest, .pending, .conflict, .shuttingDown].randomElement(using: &g)!, t() ?? ""))
            #expect(try Framing.decode(RPCReply.self, payload: Array(r.json.utf8)) == r)
            if !r.json.contains("/") {
                #expect(Array(r.json.utf8) == Array(Framing.encode(message: r)[12...]))
            }
        }
    }

    @Test func roundTrip() throws {
        let frame = Framing.encode(message: RPCRequest(method: .ping))
        #expect(Array(frame[0..<4]) == Array("SGPD".utf8))
        #expect(Framing.parseHeader(Array(frame[0..<12])) == .valid(version: 1, length: frame.count - 12))
        let back = try Framing.decode(RPCRequest.self, payload: Array(frame[12...]))
        #expect(back.method == .ping)
    }

    @Test func headerErrors() {
        #expect(Framing.parseHeader(Array("GET / HTTP/1.1".utf8.prefix(12))) == .badMagic)
        var big = Framing.encode([])
        big[8] = 0x7f
        #expect(Framing.parseHeader(big) == .tooLarge(0x7f00_0000))
        #expect(Framing.parseHeader(Framing.encode([1, 2], version: 9)) == .valid(version: 9, length: 2))
    }

    @Test func requestKey() {
        #expect(PodRequest(podName: "nginx", podNamespace: "default", containerID: "c1").key == "default/nginx")
        #expect(PodRequest(containerID: "default-abc").key == "default-abc")
    }
}

@Suite struct AnnotationTests {
    let good = #"[{"eniId":"eni-0a1b2c3d4e5f60718","ifAddress":"0a:1b:2c:3d:4e:5f","privateIp":"10.0.40.12","ipv6Addr":"","vlanId":7,"subnetCidr":"10.0.32.0/19","subnetV6Cidr":"","associationID":"trunk-assoc-0123","futureKey":{"x":1}}]"#

    @Test func decodesReferenceAnnotation() throws {
        let e = try BranchENI.decode(annotation: good)
        #expect(e.vlanID == 7)
        #expect(e.eniID == "eni-0a1b2c3d4e5f60718")
        #expect(e.mac == MACAddress("0a:1b:2c:3d:4e:5f"))
        #expect(e.ipv4 == IPAddress("10.0.40.12"))
        #expect(e.gatewayV4 == IPAddress("10.0.32.1"))
        #expect(e.associationID == "trunk-assoc-0123")
    }

    @Test func acceptsOlderVlanIDSpelling() throws {
        let old = good.replacingOccurrences(of: "\"vlanId\"", with: "\"vlanID\"")
        #expect(try BranchENI.decode(annotation: old).vlanID == 7)
    }

    @Test(arguments: [
        (#""vlanId":7"#, #""vlanId":0"#, "vlanId"),
        (#""vlanId":7"#, #""vlanId":4095"#, "vlanId"),
        (#""vlanId":7"#, #""vlanId":154"#, "vlanId"),
        (#""vlanId":7,"#, "", "vlanId"),
        (#""ifAddress":"0a:1b:2c:3d:4e:5f""#, #""ifAddress":"zz:1b:2c:3d:4e:5f""#, "ifAddress"),
        (#""ifAddress":"0a:1b:2c:3d:4e:5f""#, #""ifAddress":"01:00:5e:00:00:01""#, "ifAddress"),
        (#""privateIp":"10.0.40.12""#, #""privateIp":"10.1.0.1""#, "privateIp"),
        (#""privateIp":"10.0.40.12""#, #""privateIp":"banana""#, "privateIp"),
        (#""subnetCidr":"10.0.32.0/19""#, #""subnetCidr":"10.0.32.0""#, "subnetCidr"),
    ])
    func invalidFieldIsNamed(_ from: String, _ to: String, _ field: String) {
        let bad = good.replacingOccurrences(of: from, with: to)
        #expect(bad != good)
        #expect { try BranchENI.decode(annotation: bad) } throws: { ($0 as! AnnotationError).field == field }
    }

    @Test func notAnArray() {
        #expect { try BranchENI.decode(annotation: #"{"vlanId":1}"#) } throws: { ($0 as! AnnotationError).field == "annotation" }
        #expect { try BranchENI.decode(annotation: "[]") } throws: { ($0 as! AnnotationError).field == "annotation" }
        #expect { try BranchENI.decode(annotation: #"[{"vlanId":"7"}]"#) } throws: { ($0 as! AnnotationError).field == "annotation" }
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) { out += rest[..<r.lowerBound] + b; rest = rest[r.upperBound...] }
        return out + rest
    }
}
