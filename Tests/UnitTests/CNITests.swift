import CNI
import CNIPlugin
import Testing

@Suite struct EnvironmentTests {
    let base = ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/pod1", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"]

    @Test func parsesKubeletArgs() throws {
        var env = base
        env["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u-1"
        let e = try CNIEnvironment.parse(env)
        #expect(e.command == .add)
        #expect(e.args == CNIArgs(podName: "nginx", podNamespace: "default", infraContainerID: "c1", podUID: "u-1"))
        #expect(e.args.hasPodIdentity)
    }

    @Test(arguments: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"])
    func addNeedsVariable(_ name: String) {
        var env = base
        env[name] = nil
        #expect { try CNIEnvironment.parse(env) } throws: { e in
            let e = e as! CNIError
            return e.code == 4 && e.msg.contains(name)
        }
    }

    @Test func delAllowsEmptyNetns() throws {
        var env = base
        env["CNI_COMMAND"] = "DEL"
        env["CNI_NETNS"] = ""
        #expect(try CNIEnvironment.parse(env).netns == "")
    }

    @Test func unknownCommandIsCode4() {
        #expect { try CNIEnvironment.parse(["CNI_COMMAND": "FROB"]) } throws: { ($0 as! CNIError).code == 4 && ($0 as! CNIError).msg.contains("FROB") }
        #expect { try CNIEnvironment.parse([:]) } throws: { ($0 as! CNIError).code == 4 }
    }

    @Test func malformedArgs() {
        var env = base
        env["CNI_ARGS"] = "K8S_POD_NAME"
        #expect { try CNIEnvironment.parse(env) } throws: { ($0 as! CNIError).code == 4 }
    }
}

@Suite struct NetConfTests {
    func conf(_ json: String) throws -> NetConf { try CNIJSON.decode(NetConf.self, from: Array(json.utf8)) }

    @Test func defaults() throws {
        let c = try PluginConfig.validate(conf(#"{"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni"}"#))
        #expect(c.mode == .strict)
        #expect(c.vethPrefix == "eni")
        #expect(c.mtu == 9001)
        #expect(c.ipamdSocket == "/var/run/aws-node/ipamd.sock")
    }

    @Test func referenceConflistEntry() throws {
        let c = try PluginConfig.validate(conf(#"{"cniVersion":"0.4.0","name":"aws-cni","type":"aws-cni","vethPrefix":"abc","mtu":"1500","podSGEnforcingMode":"standard","pluginLogFile":"/tmp/p.log","pluginLogLevel":"Info","ipamdSocket":"/tmp/i.sock"}"#))
        #expect(c.mode == .standard && c.vethPrefix == "abc" && c.mtu == 1500 && c.logLevel == "info" && c.ipamdSocket == "/tmp/i.sock")
    }

    @Test func numericMTUAccepted() throws {
        #expect(try PluginConfig.validate(conf(#"{"cniVersion":"1.0.0","mtu":1400}"#)).mtu == 1400)
    }

    @Test(arguments: [
        (#"{"cniVersion":"1.0.0","mtu":"70000"}"#, "mtu"),
        (#"{"cniVersion":"1.0.0","mtu":"abc"}"#, "mtu"),
        (#"{"cniVersion":"1.0.0","mtu":"575"}"#, "mtu"),
        (#"{"cniVersion":"1.0.0","podSGEnforcingMode":"lax"}"#, "podSGEnforcingMode"),
        (#"{"cniVersion":"1.0.0","vethPrefix":"toolong"}"#, "vethPrefix"),
        (#"{"cniVersion":"1.0.0","vethPrefix":"vlan"}"#, "vethPrefix"),
        (#"{"cniVersion":"1.0.0","pluginLogLevel":"loud"}"#, "pluginLogLevel"),
        (#"{"cniVersion":"1.0.0","pluginLogFile":"stdout"}"#, "pluginLogFile"),
        (#"{"cniVersion":"1.0.0","ipamdSocket":"relative.sock"}"#, "ipamdSocket"),
        (#"{"name":"x"}"#, "cniVersion"),
    ])
    func invalidValueIsCode7(_ json: String, _ key: String) throws {
        let c = try conf(json)
        #expect { try PluginConfig.validate(c) } throws: { e in
            let e = e as! CNIError
            return e.code == 7 && e.msg.contains(key)
        }
    }

    @Test func unsupportedVersionIsCode1() throws {
        let c = try conf(#"{"cniVersion":"0.2.0"}"#)
        #expect { try PluginConfig.validate(c) } throws: { ($0 as! CNIError).code == 1 }
    }
}

@Suite struct ResultEncodingTests {
    let result = CNIResult(cniVersion: "1.1.0", interfaces: [
        .init(name: "vlanc440f455693", mac: "02:00:00:00:00:01"),
        .init(name: "eth0", mac: "02:00:00:00:00:02", sandbox: "/var/run/netns/pod1"),
        .init(name: "dummyc440f455693", mac: "7"),
    ], ips: [.init(address: "10.0.40.12/32", gateway: "10.0.32.1", interface: 1)])

    @Test(arguments: CNIVersion.supported)
    func encodesPerVersion(_ v: String) throws {
        let json = CNIJSON.encode(result.converted(to: v))
        let ipVersion = v.hasPrefix("0.") ? #","version":"4""# : ""
        #expect(json == #"{"cniVersion":"\#(v)","interfaces":[{"mac":"02:00:00:00:00:01","name":"vlanc440f455693"},{"mac":"02:00:00:00:00:02","name":"eth0","sandbox":"/var/run/netns/pod1"},{"mac":"7","name":"dummyc440f455693"}],"ips":[{"address":"10.0.40.12/32","gateway":"10.0.32.1","interface":1\#(ipVersion)}]}"#)
        // And it reads back as prevResult.
        let back = try CNIJSON.decode(CNIResult.self, from: Array(json.utf8))
        #expect(back.interfaces == result.interfaces)
        #expect(back.ips?.first?.address == "10.0.40.12/32")
    }

    @Test func errorJSON() {
        let e = CNIError(.invalidConfig, "invalid mtu \"x\"", details: "an integer")
        #expect(CNIJSON.encode(CNIErrorJSON(e, version: "0.4.0")) == #"{"cniVersion":"0.4.0","code":7,"details":"an integer","msg":"invalid mtu \"x\""}"#)
    }

    @Test func versionInfo() {
        #expect(CNIJSON.encode(VersionInfo(cniVersion: "1.1.0")) == #"{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#)
    }
}

@Suite struct LogLineJSONTests {
    /// The hand-written flat object is byte for byte what the encoder writes, escapes included.
    @Test func flatObjectMatchesTheEncoder() {
        let tricky = ["plain", "", "quote \" and backslash \\", "/var/log/aws-routed-eni/plugin.log", "tab\tnew\nline\r",
                      "\u{01}\u{08}\u{0C}\u{1F}\u{7F}", "héllo ✓ 🚀", "{\"json\":[1,2]}"]
        var g = SystemRandomNumberGenerator()
        for round in 0..<200 {
            var fields: [String: String] = [:]
            for k in 0..<Int.random(in: 0...6, using: &g) {
                let key = round % 2 == 0 ? "k\(k)" : tricky.randomElement(using: &g)! + "\(k)"
                var value = ""
                for _ in 0..<Int.random(in: 0...3, using: &g) { value += tricky.randomElement(using: &g)! }
                value += String(UnicodeScalar(UInt8.random(in: 0...0x7f, using: &g)))
                fields[key] = value
            }
            #expect(CNIJSON.object(fields) == CNIJSON.encode(fields), "\(fields)")
        }
    }

    /// Random results in every version's shape: the direct writer and the encoder agree.
    @Test func resultMatchesTheEncoder() {
        var g = SystemRandomNumberGenerator()
        let texts = ["eth0", "vlan0a1b2c3d4e5", "/var/run/netns/cni-1234", "02:00:00:00:00:01", "a \"b\" \\ c\n", "✓"]
        func text() -> String { texts.randomElement(using: &g)! }
        func maybe<T>(_ v: @autoclosure () -> T) -> T? { Bool.random(using: &g) ? v() : nil }
        for _ in 0..<300 {
            var r = CNIResult(cniVersion: CNIVersion.supported.randomElement(using: &g)!)
            r.interfaces = maybe((0..<Int.random(in: 0...3, using: &g)).map { _ in .init(name: text(), mac: maybe(text()), sandbox: maybe(text())) })
            r.ips = maybe((0..<Int.random(in: 0...2, using: &g)).map { _ in
                .init(address: Bool.random(using: &g) ? "10.0.40.12/32" : "fd00::1/128", gateway: maybe(text()), interface: maybe(Int.random(in: 0...3, using: &g)))
            })
            r.routes = maybe([.init(dst: "0.0.0.0/0", gw: maybe(text()))])
            if Bool.random(using: &g) {
                var d = CNIResult.DNS()
                d.nameservers = maybe([text(), text()]); d.domain = maybe(text()); d.search = maybe([text()]); d.options = maybe([])
                r.dns = d
            }
            let c = r.converted(to: CNIVersion.supported.randomElement(using: &g)!)
            #expect(c.json == CNIJSON.encode(c), "\(c)")
        }
    }

    @Test func versionInfoMatchesTheEncoder() {
        for v in CNIVersion.supported { #expect(VersionInfo(cniVersion: v).json == CNIJSON.encode(VersionInfo(cniVersion: v))) }
    }
}
