import Foundation
import IPAMDCore
import IPAMDProtocol
import IPAMDServer
import NetModel
import Synchronization
import Testing

/// ipamd's servers on real Unix sockets in a temp dir (no root needed), run as ipamd runs them.
@Suite struct ServerTests {
    func config(_ dir: String) -> IPAMDConfig {
        var config = IPAMDConfig(podENISource: .file(path: dir + "/pods.json"), trunk: .name("eth1"), vpcCIDRs: [])
        config.node.enablePodENI = true
        config.rpcSocket = dir + "/ipamd.sock"
        config.debugSocket = dir + "/debug.sock"
        config.servers.introspection = .unix(path: dir + "/introspection.sock")
        return config
    }

    func start(_ dir: String, inventory: NodeInventory = NodeInventory()) async throws -> RunningDaemon {
        writeAtomically(podsFile, to: dir + "/pods.json")
        return try await RunningDaemon.start(config: config(dir), source: StaticFileSource(path: dir + "/pods.json", logger: quiet),
                                             trunk: FixedTrunk(index: 4), inventory: inventory)
    }

    func raw(_ path: String, _ bytes: [UInt8]) throws -> (UnixStream, UnixStream.FrameRead) {
        let s = try UnixStream.connect(path: path, timeoutSeconds: 5)
        try s.writeAll(bytes)
        return (s, try s.readFrame())
    }

    @Test func servesAndSurvivesBadClients() async throws {
        let dir = tempDir()
        let d = try await start(dir)
        let sock = dir + "/ipamd.sock"
        try await offPool { () -> Result<Void, any Error> in Result {
            var st = stat()
            #expect(stat(sock, &st) == 0 && st.st_mode & 0o777 == 0o600)

            // A client of another version gets a clear error, and the connection stays usable.
            let (s, answer) = try raw(sock, Framing.encode(message: RPCRequest(method: .ping), version: 2))
            guard case .frame(_, let payload) = answer else { Issue.record("no frame"); return }
            let reply = try Framing.decode(RPCReply.self, payload: payload)
            #expect(reply.error?.code == .unsupportedVersion)
            #expect(reply.error?.message.contains("version 2") == true)
            try s.writeAll(Framing.encode(message: RPCRequest(method: .ping)))
            guard case .frame(1, let p2) = try s.readFrame() else { Issue.record("no second frame"); return }
            #expect(try Framing.decode(RPCReply.self, payload: p2).success)

            // Garbage gets an error frame, then the connection ends; malformed JSON gets one too.
            let (g, ga) = try raw(sock, Array("GET / HTTP/1.1\r\n\r\n".utf8))
            guard case .frame(_, let gp) = ga else { Issue.record("no frame for garbage"); return }
            #expect(try Framing.decode(RPCReply.self, payload: gp).error?.code == .badRequest)
            #expect(try g.readFrame() == .eof)
            let (_, j) = try raw(sock, Framing.encode(Array("{\"method\":\"Nope\"}".utf8)))
            guard case .frame(_, let jp) = j else { Issue.record("no frame for bad json"); return }
            #expect(try Framing.decode(RPCReply.self, payload: jp).error?.code == .badRequest)
            // A frame announcing more than the limit is refused before it is read.
            var huge = Framing.encode([])
            huge[8] = 0x7f
            let (_, t) = try raw(sock, huge)
            guard case .frame(_, let tp) = t else { Issue.record("no frame for an oversized one"); return }
            #expect(try Framing.decode(RPCReply.self, payload: tp).error?.message.contains("exceeds") == true)

            // Still serving real requests.
            let add = try SocketIPAMDClient(path: sock).call(RPCRequest(method: .addNetwork,
                pod: PodRequest(podName: "db-client", podNamespace: "default", podUID: "u1", containerID: "c1")), timeoutSeconds: 5)
            #expect(add.network?.vlanID == 7)

            // The debug socket shows the served pod.
            let pods = try HTTPExchange.get(unixSocket: dir + "/debug.sock", "/v1/pods")
            #expect(pods.status == 200)
            let list = try JSONDecoder().decode([PodView].self, from: Data(pods.body))
            #expect(list.first { $0.name == "db-client" }?.vlanID == 7)
            #expect(list.first { $0.name == "db-client" }?.podUID == "u1")
        } }.get()
        await d.stop()
    }

    @Test func staleSocketReplacedLiveOneRefused() async throws {
        let dir = tempDir()
        // A stale socket file: bound once, its owner gone.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = try UnixStream.address(dir + "/ipamd.sock")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
        #expect(FileManager.default.fileExists(atPath: dir + "/ipamd.sock"))
        let d = try await start(dir)
        let ping = await offPool { try? SocketIPAMDClient(path: dir + "/ipamd.sock").call(RPCRequest(method: .ping), timeoutSeconds: 5).success }
        #expect(ping == true)
        // A second ipamd on the same paths is refused, and leaves the first one's sockets alone.
        await #expect(throws: SocketError.self) { _ = try await self.start(dir) }
        #expect(FileManager.default.fileExists(atPath: dir + "/ipamd.sock"))
        await d.stop()
        for f in ["ipamd.sock", "debug.sock", "introspection.sock"] {
            #expect(!FileManager.default.fileExists(atPath: dir + "/" + f), "\(f) left behind")
        }
    }

    /// Shutdown: the socket file goes at once, a request already on its way is still answered.
    @Test func shutdownLetsInFlightRequestFinish() async throws {
        let dir = tempDir()
        let d = try await start(dir)
        let s = try UnixStream.connect(path: dir + "/ipamd.sock", timeoutSeconds: 5)
        let frame = Framing.encode(message: RPCRequest(method: .ping))
        try s.writeAll(Array(frame[0..<5]))
        #expect(await eventually { d.daemon.rpc.connectionCount == 1 })
        let stopping = Task { await d.stop() }
        #expect(await eventually { !FileManager.default.fileExists(atPath: dir + "/ipamd.sock") })
        let read = await offPool { () -> UnixStream.FrameRead? in
            try? s.writeAll(Array(frame[5...]))
            return try? s.readFrame()
        }
        guard case .frame(_, let p)? = read else { Issue.record("in-flight request was cut"); return }
        #expect(try Framing.decode(RPCReply.self, payload: p).success)
        s.close()
        await stopping.value
    }

    /// 20 AddNetworks wait for annotations at once while other clients are served; one client that
    /// sends half a frame and stalls holds nothing; shutdown answers the waiting ones with code 11.
    @Test func waitingAndStalledClientsDoNotStallOthers() async throws {
        let dir = tempDir()
        let cache = PodCache(waitBound: 60, logger: quiet)
        let n = 20
        cache.replaceAll((0..<n).map { PodFacts(namespace: "default", name: "late\($0)", uid: "u\($0)", branch: true) })
        var config = config(dir)
        var k = KubernetesSettings(nodeName: "node-1")
        k.waitTimeout = 60
        config.podENISource = .kubernetes(k)
        let d = RunningDaemon(try await Daemon.bind(config: config, source: cache, trunk: FixedTrunk(index: 4), registry: PodRegistry(),
                                                    inventory: NodeInventory(), logger: quiet))
        let sock = dir + "/ipamd.sock"
        let stalled = try UnixStream.connect(path: sock, timeoutSeconds: 5)
        try stalled.writeAll(Array(Framing.encode(message: RPCRequest(method: .ping))[0..<7]))
        let replies = Mutex<[RPCReply]>([])
        for i in 0..<n {
            Thread.detachNewThread {
                let r = try? SocketIPAMDClient(path: sock).call(RPCRequest(method: .addNetwork,
                    pod: PodRequest(podName: "late\(i)", podNamespace: "default", podUID: "u\(i)", containerID: "c\(i)")), timeoutSeconds: 60)
                replies.withLock { $0.append(r ?? RPCReply(error: RPCFailure(.internal, "no reply"))) }
            }
        }
        #expect(await eventually { cache.waiters == n })
        // Served while 20 wait and one stalls.
        let ping = await offPool { try? SocketIPAMDClient(path: sock).call(RPCRequest(method: .ping), timeoutSeconds: 5).success }
        #expect(ping == true)
        // One annotation arrives: that one waiter is answered with its VLAN, the others keep waiting.
        cache.upsert(PodFacts(namespace: "default", name: "late0", uid: "u0", branch: true,
                              annotation: #"[{"eniId":"eni-1","ifAddress":"0a:00:00:00:00:07","privateIp":"10.0.40.12","vlanId":7,"subnetCidr":"10.0.32.0/19"}]"#))
        #expect(await eventually { replies.withLock { $0.count } == 1 })
        #expect(replies.withLock { $0.first?.network?.vlanID } == 7)
        await d.stop()
        #expect(await eventually { replies.withLock { $0.count } == n })
        #expect(replies.withLock { $0.filter { $0.error?.code == .shuttingDown }.count } == n - 1)
        stalled.close()
    }

    /// A connection that says nothing is closed after the idle timeout; a waiting request is not.
    @Test func idleConnectionIsClosed() async throws {
        let dir = tempDir()
        let handler = RPCHandler(config: config(dir), source: StaticFileSource(path: dir + "/none.json", logger: quiet),
                                 trunk: FixedTrunk(index: 4), registry: PodRegistry(), logger: quiet)
        let server = try await RPCServer.bind(path: dir + "/s.sock", handler: handler, idleTimeout: .milliseconds(200), logger: quiet)
        let running = Task { try await server.run() }
        let read = await offPool { () -> UnixStream.FrameRead? in
            guard let s = try? UnixStream.connect(path: dir + "/s.sock", timeoutSeconds: 10) else { return nil }
            defer { s.close() }
            return try? s.readFrame()
        }
        #expect(read == .eof)
        server.stopAccepting()
        _ = await running.result
    }

    // MARK: introspection

    @Test func introspectionEndpoints() async throws {
        let dir = tempDir()
        let inventory = NodeInventory(enis: [
            ENIRecord(id: "eni-primary", mac: MACAddress("0a:00:00:00:00:01"), linkName: "eth0", deviceNumber: 0, isPrimary: true, isTrunk: false,
                      subnetID: "subnet-1"),
            ENIRecord(id: "eni-trunk", mac: MACAddress("0a:00:00:00:00:02"), deviceNumber: 2, isPrimary: false, isTrunk: true, subnetID: "subnet-1"),
        ])
        let d = try await start(dir, inventory: inventory)
        let sock = dir + "/introspection.sock"
        try await offPool { () -> Result<Void, any Error> in Result {
            _ = try SocketIPAMDClient(path: dir + "/ipamd.sock").call(RPCRequest(method: .addNetwork,
                pod: PodRequest(podName: "db-client", podNamespace: "default", podUID: "u1", containerID: "secret-container-id")), timeoutSeconds: 5)

            let root = try HTTPExchange.get(unixSocket: sock, "/")
            #expect(root.status == 200 && root.headers["content-type"] == "application/json")
            let commands = try #require(try JSONSerialization.jsonObject(with: Data(root.body)) as? [String: [String]])["AvailableCommands"]
            #expect(Set(commands ?? []) == ["/v1/enis", "/v1/networkutils-env-settings", "/v1/ipamd-env-settings", "/v1/pods", "/healthz", "/readyz"])

            let enis = try HTTPExchange.get(unixSocket: sock, "/v1/enis")
            #expect(enis.status == 200)
            #expect(!enis.text.contains("secret-container-id"), "container ids are scrubbed")
            let card = try #require((try JSONSerialization.jsonObject(with: Data(enis.body)) as? [String: Any])?["0"] as? [String: Any])
            #expect(card["TotalIPs"] as? Int == 0 && card["AssignedIPs"] as? Int == 0)
            let list = try #require(card["ENIs"] as? [String: [String: Any]])
            #expect(list["eni-primary"]?["IsPrimary"] as? Bool == true && list["eni-primary"]?["RouteTableID"] as? Int == 254)
            let trunk = try #require(list["eni-trunk"])
            #expect(trunk["IsTrunk"] as? Bool == true && trunk["DeviceNumber"] as? Int == 2 && trunk["RouteTableID"] as? Int == 3)
            for key in ["ID", "IsEFA", "AvailableIPv4Cidrs", "IPv6Cidrs", "IsExcludedForPodIPs", "SubnetID"] {
                #expect(trunk[key] != nil, "the reference's \(key)")
            }
            let branch = try #require((trunk["BranchENIs"] as? [String: [String: Any]])?["eni-1"])
            #expect(branch["VlanID"] as? Int == 7 && branch["PodName"] as? String == "db-client" && branch["IPv4Address"] as? String == "10.0.40.12")

            let net = try #require(try JSONSerialization.jsonObject(with: Data(HTTPExchange.get(unixSocket: sock, "/v1/networkutils-env-settings").body)) as? [String: Any])
            #expect(net["AWS_VPC_K8S_CNI_CONNMARK"] as? Int == 128 && net["AWS_VPC_K8S_CNI_RANDOMIZESNAT"] as? Int == 2)
            #expect(net["AWS_VPC_ENI_MTU"] as? Int == 9001 && net["AWS_VPC_K8S_CNI_VETHPREFIX"] as? String == "eni")
            #expect(net["AWS_VPC_K8S_CNI_EXTERNALSNAT"] as? Bool == false && net["AWS_VPC_CNI_NODE_PORT_SUPPORT"] as? Bool == true)
            #expect(net["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"] as? [String] == [] && net["AWS_EXTERNAL_SERVICE_CIDRS"] as? [String] == [])
            let ipamd = try #require(try JSONSerialization.jsonObject(with: Data(HTTPExchange.get(unixSocket: sock, "/v1/ipamd-env-settings").body)) as? [String: Any])
            #expect(ipamd["WARM_ENI_TARGET"] as? Int == 1 && ipamd["WARM_IP_TARGET"] as? Int == 0)
            #expect(Set(ipamd.keys) == ["WARM_IP_TARGET", "WARM_ENI_TARGET", "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "AWS_MANAGE_ENIS_NON_SCHEDULABLE", "ENABLE_SUBNET_DISCOVERY"])

            #expect(try HTTPExchange.get(unixSocket: sock, "/healthz").status == 200)
            // Not ready until main marks it (after node setup and the plugin install).
            #expect(try HTTPExchange.get(unixSocket: sock, "/readyz").status == 503)
            inventory.markReady()
            #expect(try HTTPExchange.get(unixSocket: sock, "/readyz").status == 200)
            // The same routes on the root-only debug socket.
            #expect(try HTTPExchange.get(unixSocket: dir + "/debug.sock", "/readyz").status == 200)
        } }.get()
        await d.stop()
    }

    @Test func badHTTPRequests() async throws {
        let dir = tempDir()
        let d = try await start(dir)
        let sock = dir + "/introspection.sock"
        try await offPool { () -> Result<Void, any Error> in Result {
            #expect(try HTTPExchange.get(unixSocket: sock, "/v1/nothing").status == 404)
            #expect(try HTTPExchange.get(unixSocket: sock, "/v1/pods/extra").status == 404)
            let post = try HTTPExchange.get(unixSocket: sock, "/v1/pods", method: "POST")
            #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD")
            #expect(try HTTPExchange.get(unixSocket: sock, "/v1/enis", method: "DELETE").status == 405)
            let withBody = try HTTPExchange.raw(unixSocket: sock, "GET /v1/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            #expect(withBody.status == 413)
            let head = try HTTPExchange.get(unixSocket: sock, "/healthz", method: "HEAD")
            #expect(head.status == 200)
            let garbage = try HTTPExchange.raw(unixSocket: sock, "NOT HTTP AT ALL\r\n\r\n")
            #expect(garbage.status == 400)
            // Headers over the limit are refused, not buffered.
            let big = try HTTPExchange.raw(unixSocket: sock, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n")
            #expect(big.status == 431 || big.status == 400)
            // Keep-alive: two requests on one connection.
            let s = try UnixStream.connect(path: sock, timeoutSeconds: 5)
            try s.writeAll(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(try HTTPExchange.read(s).status == 200)
            try s.writeAll(Array("GET /v1/enis HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(try HTTPExchange.read(s).status == 200)
            s.close()
        } }.get()
        await d.stop()
    }

    /// A client that sends part of a request and stalls is cut off after the request timeout, and
    /// meanwhile others are answered.
    @Test func slowHTTPClientIsCutOff() async throws {
        let dir = tempDir()
        writeAtomically(podsFile, to: dir + "/pods.json")
        let routes = IntrospectionRoutes(config: config(dir), registry: PodRegistry(),
                                         source: StaticFileSource(path: dir + "/pods.json", logger: quiet), inventory: NodeInventory())
        let server = try await HTTPServer.bind(.unix(path: dir + "/h.sock"), name: "test", routes: routes, requestTimeout: .milliseconds(300), logger: quiet)
        let running = Task { try await server.run() }
        let outcome = await offPool { () -> (Int?, Bool) in
            guard let slow = try? UnixStream.connect(path: dir + "/h.sock", timeoutSeconds: 10) else { return (nil, false) }
            defer { slow.close() }
            try? slow.writeAll(Array("GET /healthz HTTP/1.1\r\nHo".utf8))
            let other = try? HTTPExchange.get(unixSocket: dir + "/h.sock", "/healthz").status
            // The stalled one gets no answer and is closed.
            let closed = (try? slow.readSome()) == .some(nil)
            return (other, closed)
        }
        #expect(outcome.0 == 200)
        #expect(outcome.1, "the stalled client was not cut off")
        server.close()
        _ = await running.result
    }
}
