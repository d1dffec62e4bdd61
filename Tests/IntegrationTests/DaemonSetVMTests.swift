import Foundation
import Glibc
import SystemIO
import TestSupport
import Testing

/// The node agent installed the way a cluster installs it (issue 15), in the VM: containerd runs
/// `make image`'s image with exactly what deploy/aws-node.yaml's DaemonSet grants (the node's
/// network, its hostPath mounts, its environment, its capabilities, a read-only root) plus what
/// kubelet gives every pod (the service account token and CA, KUBERNETES_SERVICE_HOST/PORT),
/// against the test API server (enforcing the manifest's ClusterRole) and the cloud test servers.
/// ipamd sets up the node, signals the CNINode and installs the plugin and conflist on the host
/// paths; `ctr run --cni` starts a regular pod, and a branch pod is added as containerd's CRI
/// plugin adds one for kubelet (the installed plugin with the pod's identity in CNI_ARGS: ctr
/// sends none, so ipamd could not find the pod's annotation); the container is replaced by a
/// rebuilt image while the pods are probed, then rolled back (not one probe may fail, and the
/// node's datapath is not touched); the container is removed and the pods keep working; after the pods, the node
/// uninstall script leaves nothing of ours. The host paths are the VM's own (/opt/cni/bin,
/// /etc/cni/net.d, /var/run/aws-node, ...): its root is a throw-away overlay.
@Suite(.serialized, .ownThread) struct DaemonSetVMTests {
    static let inVM = FileManager.default.fileExists(atPath: "/run/vm/share")
    static let image = Binaries.root + "/.build/image/aws-node.tar"
    static let upgradeImage = Binaries.root + "/.build/image/aws-node-upgrade.tar"
    /// The CNI directories as on an EKS node, and what ipamd owns on the host.
    static let hostDirs = ["/opt/cni/bin", "/etc/cni/net.d", "/var/run/aws-node", "/var/log/aws-routed-eni"]
    /// containerd's default set for a non-privileged container (what `drop: ["ALL"]` removes).
    static let defaultCapabilities = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
                                      "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]

    /// `ctr run` arguments for the DaemonSet's container on the simulated node: its network
    /// namespace stands for hostNetwork; hostPath volumes become bind mounts (DirectoryOrCreate
    /// ones created first); the security context becomes capabilities and a read-only root.
    static func runArguments(_ ds: DeployManifestTests.DaemonSet, node: String, env extra: [String: String]) throws -> [String] {
        var args = ["--with-ns", "network:\(node)"]
        let security = ds.container["securityContext"] as? [String: Any] ?? [:]
        if security["privileged"] as? Bool == true { args.append("--privileged") }
        if security["readOnlyRootFilesystem"] as? Bool == true { args.append("--read-only") }
        let caps = security["capabilities"] as? [String: [String]] ?? [:]
        let dropped = caps["drop"]?.contains("ALL") == true ? defaultCapabilities : caps["drop"] ?? []
        for c in dropped { args += ["--cap-drop", "CAP_\(c)"] }
        for c in caps["add"] ?? [] { args += ["--cap-add", "CAP_\(c)"] }
        for (host, inContainer) in ds.mounts.sorted(by: { $0.key < $1.key }) {
            try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
            args += ["--mount", "type=bind,src=\(host),dst=\(inContainer),options=rbind:rw"]
        }
        for (k, v) in ds.environment.merging(extra, uniquingKeysWith: { _, b in b }).sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
        return args
    }

    /// A pod under `ctr run --cni --rm`: it serves HTTP on :8080 until released through its FIFO;
    /// ctr then runs the CNI DEL.
    final class CtrPod {
        let id: String
        let ctl: String
        let process: RunningProcess
        var ip = ""

        init(_ ctrd: Containerd, image: String, id: String, node: String, work: String) throws {
            self.id = id
            ctl = work + "/ctl-\(id)"
            try FileManager.default.createDirectory(atPath: ctl, withIntermediateDirectories: true)
            guard mkfifo(ctl + "/go", 0o600) == 0 else { throw Errno(rawValue: errno) }
            let script = "mkdir -p /tmp/w && echo ok > /tmp/w/index.html && httpd -p 8080 -h /tmp/w && echo READY && timeout 600 sh -c 'read x < /ctl/go' && echo released"
            process = try ctrd.ctrProcess(["run", "--cni", "--rm", "--snapshotter", "native", "--mount", "type=bind,src=\(ctl),dst=/ctl,options=rbind:rw",
                                           image, id, "sh", "-c", script], netns: node)
        }

        /// Waits for READY, then reads its address from ctr's cached ADD result.
        func ready() throws -> Bool {
            guard process.waitForLine(containing: "READY", timeout: 120) else { return false }
            let cache = "/var/lib/cni/results/aws-cni-default-\(id)-eth0"
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cache))) as? [String: Any]
            let ips = (json?["result"] as? [String: Any])?["ips"] as? [[String: Any]]
            ip = String((ips?.first?["address"] as? String ?? "").split(separator: "/").first ?? "")
            return !ip.isEmpty
        }

        /// Lets the container end; ctr runs DEL and removes it. Its exit status.
        func release() -> (exitCode: Int32?, signal: Int32?)? {
            let fd = open(ctl + "/go", O_WRONLY | O_NONBLOCK)
            if fd >= 0 { _ = write(fd, "go\n", 3); close(fd) }
            return process.waitForExit(timeout: 120)
        }
    }

    /// A branch pod as containerd's CRI plugin sets one up for kubelet: the installed plugin with
    /// the conflist's first plugin, the pod's identity in CNI_ARGS, in a netns of its own; it
    /// serves HTTP on :8080 (busybox httpd).
    final class KubeletPod {
        let name: String
        let netns: TestNamespace
        let result: String
        let ip: String
        let server: RunningProcess

        init(_ n: CloudNode, name: String, uid: String) throws {
            self.name = name
            netns = try n.sim.newPodNamespace()
            let add = try Self.cni("ADD", name: name, uid: uid, netns: netns.path, node: n.sim.node.path)
            result = add.out
            let ips = add.json?["ips"] as? [[String: Any]]
            ip = String((ips?.first?["address"] as? String ?? "").split(separator: "/").first ?? "")
            guard add.exitCode == 0, !ip.isEmpty else { throw ContainerdError.command("kubelet ADD \(name): \(add)") }
            let www = n.sim.work + "/www-\(name)"
            try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
            try "ok\n".write(toFile: www + "/index.html", atomically: true, encoding: .utf8)
            server = try RunningProcess(["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", www], env: [:], netns: netns.path)
        }

        static func cni(_ command: String, name: String, uid: String, netns: String, node: String, prevResult: String? = nil) throws -> Completed {
            var conf = try firstPluginConf(ofConflist: "/etc/cni/net.d/10-aws.conflist")
            if let prevResult { conf["prevResult"] = try JSONSerialization.jsonObject(with: Data(prevResult.utf8)) }
            return try Spawn.run(["/opt/cni/bin/aws-cni"], env: [
                "CNI_COMMAND": command, "CNI_CONTAINERID": "c-\(name)", "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
                "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=\(name);K8S_POD_INFRA_CONTAINER_ID=c-\(name);K8S_POD_UID=\(uid)",
            ], stdin: Array(try JSONSerialization.data(withJSONObject: conf)), netns: node)
        }

        /// Stops the server; DEL with the ADD's result, as the runtime would.
        func delete(_ node: String) throws -> Completed {
            server.signal(SIGKILL)
            _ = server.waitForExit(timeout: 10)
            return try Self.cni("DEL", name: name, uid: "", netns: netns.path, node: node, prevResult: result)
        }
    }

    /// HTTP GET from the node's namespace; the status code (0: no answer within 2 s).
    static func httpStatus(_ node: String, _ url: String) -> Int {
        let r = try? Spawn.run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url], env: ["PATH": "/usr/bin:/bin"], netns: node)
        return Int(r?.out ?? "") ?? 0
    }

    /// Probes every pod (as kubelet's HTTP probes would, from the node) until stopped.
    final class Prober: @unchecked Sendable {
        // @unchecked: counters behind `lock`; `stopped` read under it too.
        private let lock = NSLock()
        private var ok = 0, failed: [String] = [], stopped = false, joined = false
        private let done = DispatchSemaphore(value: 0)

        init(node: String, urls: [String]) {
            Thread.detachNewThread { [self] in
                while !(lock.withLock { stopped }) {
                    for u in urls {
                        let code = DaemonSetVMTests.httpStatus(node, u)
                        lock.withLock { if code == 200 { ok += 1 } else { failed.append("\(u): \(code)") } }
                    }
                }
                done.signal()
            }
        }

        /// Stops the probing thread and waits for it (once; later calls return the same counts).
        @discardableResult
        func stop() -> (ok: Int, failed: [String]) {
            let wait = lock.withLock { () -> Bool in
                stopped = true
                defer { joined = true }
                return !joined
            }
            if wait { done.wait() }
            return lock.withLock { (ok, failed) }
        }
    }

    static func hostLog() -> String {
        ((try? String(contentsOfFile: "/var/log/aws-routed-eni/ipamd.log", encoding: .utf8)) ?? "").split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    @Test(.enabled(if: kernelHasVLAN && inVM, "needs 802.1Q and a throw-away root: runs in the test VM"))
    func runsAsTheDaemonSetUpgradesInPlaceAndUninstallsClean() async throws {
        for d in Self.hostDirs where FileManager.default.fileExists(atPath: d) { try FileManager.default.removeItem(atPath: d) }
        try FileManager.default.createDirectory(atPath: "/opt/cni/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/etc/cni/net.d", withIntermediateDirectories: true)
        // An EKS AMI ships the standard plugins; the conflist chains portmap.
        try FileManager.default.copyItem(atPath: "/usr/lib/cni/portmap", toPath: "/opt/cni/bin/portmap")

        let n = try CloudNode(mode: "strict", instanceType: "m5.large")
        let mirror = ENIMirror(n)
        let ctrd = try Containerd(dir: n.sim.work + "/containerd")
        let api = try FakeAPIServer(netns: n.sim.node.name)
        defer { ctrd.stop(); api.close(); mirror.stop(); n.destroy() }
        let node = n.sim.node.path
        let baselineRules = try n.sim.node.ip("rule", "show")

        // The cluster: node-1's Node, its CNINode, the branch pod "web" with its annotation; the
        // API server allows only what the manifest's ClusterRole grants.
        api.control(["op": "rbac", "rules": try #require(try DeployManifestTests.object("ClusterRole")["rules"] as? [[String: Any]])])
        api.control(["op": "put_object", "path": KubernetesIpamdTests.nodePath, "object": ["kind": "Node", "metadata": ["name": "node-1"]]])
        api.control(["op": "put_object", "path": KubernetesIpamdTests.cniNodePath, "object": ["kind": "CNINode", "metadata": ["name": "node-1"], "spec": [:] as [String: Any]]])
        api.control(["op": "put_pod", "pod": pod("web", uid: "u-web", branch: true, annotation: podENI(vlan: 9, ip: "10.0.40.9"))])
        try n.sim.branch(vlan: 9, mac: "0a:00:00:00:00:09", ip: "10.0.40.9")
        // What kubelet gives every pod: the service account's token and the cluster CA, and the
        // API server's address (here on the node's loopback).
        let serviceAccount = n.sim.work + "/serviceaccount"
        try FileManager.default.createDirectory(atPath: serviceAccount, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: api.dir + "/ca.crt", toPath: serviceAccount + "/ca.crt")
        try "token-1".write(toFile: serviceAccount + "/token", atomically: true, encoding: .utf8)
        let testEnv = ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(api.port),
                       "AWS_EC2_METADATA_SERVICE_ENDPOINT": n.cloud.imdsURL, "AWS_ENDPOINT_URL_EC2": n.cloud.ec2URL, "AWS_ENDPOINT_URL_STS": n.cloud.ec2URL]
        let ds = DeployManifestTests.DaemonSet(raw: try DeployManifestTests.object("DaemonSet"))
        let args = try Self.runArguments(ds, node: node, env: testEnv)
            + ["--mount", "type=bind,src=\(serviceAccount),dst=/var/run/secrets/kubernetes.io/serviceaccount,options=rbind:ro"]

        let image = try ctrd.importImage(Self.image)
        let upgrade = try ctrd.importImage(Self.upgradeImage)
        #expect(image != upgrade, "the rebuilt image has its own name")

        // Not what ipamd sets, so the check below sees its write (a new namespace may inherit 2).
        _ = try n.sim.node.exec(["/usr/sbin/sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=0"])
        #expect(try n.sim.sysctl("net.ipv4.conf.eth0.rp_filter") == "0")

        // 1. The DaemonSet's container: ready, the node set up, the plugin installed.
        var started = ContinuousClock.now
        let containerLog = n.sim.work + "/aws-node.log"
        let runArgs = ["run", "-d", "--snapshotter", "native", "--log-uri", "file://" + containerLog] + args
        var run = try ctrd.ctr(runArgs + [image, "aws-node"])
        try #require(run.exitCode == 0, "ctr run: \(run)")
        let readyz = "http://127.0.0.1:61679/readyz"
        let diagnostics = { "ipamd's log:\n\(Self.hostLog())\ncontainer output:\n\((try? String(contentsOfFile: containerLog, encoding: .utf8))?.suffix(3000) ?? "none")\ntasks: \((try? ctrd.ctr(["tasks", "ls"]).out) ?? "")" }
        try #require(await eventually(.seconds(120), every: .milliseconds(100)) { Self.httpStatus(node, readyz) == 200 }, "never ready; \(diagnostics())")
        let firstReady = ContinuousClock.now - started
        let pid = try #require(try ctrd.taskPID("aws-node"))
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let capEff = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }.map { String($0.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
        #expect(capEff.flatMap { UInt64($0, radix: 16) } == 1 << 12, "only CAP_NET_ADMIN (12) in effect: \(capEff ?? "?")")
        #expect(FileManager.default.isExecutableFile(atPath: "/opt/cni/bin/aws-cni"), "aws-cni installed on the host")
        let conflist = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "/etc/cni/net.d/10-aws.conflist"))) as? [String: Any]
        let plugins = conflist?["plugins"] as? [[String: Any]]
        #expect(plugins?.first?["type"] as? String == "aws-cni" && plugins?.first?["ipamdSocket"] as? String == "/var/run/aws-node/ipamd.sock")
        // Written through the host's /proc/sys/net: the node's, not the container's (read-only).
        #expect(try n.sim.sysctl("net.ipv4.tcp_early_demux") == "0" && n.sim.sysctl("net.ipv4.conf.eth0.rp_filter") == "2")
        let cniNode = api.control(["op": "get_object", "path": KubernetesIpamdTests.cniNodePath])["object"] as? [String: Any]
        #expect(((cniNode?["spec"] as? [String: Any])?["features"] as? [[String: Any]])?.contains { $0["name"] as? String == "SecurityGroupsForPods" } == true,
                "CNINode: \(cniNode ?? [:])")
        print("daemonset: container start to ready \(firstReady)")

        // 2. Pods: a regular pod through ctr (the pool's address), a branch pod as kubelet's.
        let busybox = n.sim.work + "/busybox.tar"
        let built = try Spawn.run(["/bin/bash", Binaries.root + "/scripts/containerd/build-image.sh", busybox], env: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        try #require(built.exitCode == 0, "busybox image: \(built)")
        let podImage = try ctrd.importImage(busybox)
        let regular = try CtrPod(ctrd, image: podImage, id: "regular", node: node, work: n.sim.work)
        defer { _ = regular.release() }
        try #require(try regular.ready(), "pod regular: \(regular.process.output.suffix(10)) \(diagnostics())")
        let branch = try KubeletPod(n, name: "web", uid: "u-web")
        defer { branch.server.signal(SIGKILL) }
        #expect(branch.ip == "10.0.40.9" && regular.ip.hasPrefix("10.0.") && regular.ip != branch.ip, "branch \(branch.ip), regular \(regular.ip)")
        let urls = [branch.ip, regular.ip].map { "http://\($0):8080/" }
        #expect(await eventually(.seconds(30)) { urls.allSatisfy { Self.httpStatus(node, $0) == 200 } }, "\(urls) from the node")
        #expect(await eventually(.seconds(60)) { mirror.routes(regular.ip) }, "the VPC routes the regular pod's address")
        for ip in [branch.ip, regular.ip] {
            let ping = try Spawn.run(["/usr/sbin/ip", "netns", "exec", n.sim.vpc.name, "ping", "-c", "1", "-W", "10", ip], env: ["PATH": "/usr/sbin:/usr/bin:/bin"])
            #expect(ping.exitCode == 0, "the VPC reaches the pod at \(ip)")
        }

        // 3. In-place upgrade to the rebuilt image, then a rollback to the first, each while the
        // pods are probed; each new ipamd adopts them without touching the node's datapath.
        #expect(await eventually(.seconds(60)) { Self.settled() }, "the pool settles before the upgrade")
        let before = try n.sim.snapshot(pods: [])
        for (step, next) in [("upgrade", upgrade), ("rollback", image)] {
            let prober = Prober(node: node, urls: urls)
            defer { prober.stop() }
            started = ContinuousClock.now
            try ctrd.remove("aws-node")
            run = try ctrd.ctr(runArgs + [next, "aws-node"])
            try #require(run.exitCode == 0, "ctr run (\(step)): \(run)")
            #expect(await eventually(.seconds(120), every: .milliseconds(100)) { Self.httpStatus(node, readyz) == 200 }, "\(step): never ready: \(diagnostics())")
            let ready = ContinuousClock.now - started
            // Probes keep going for a while with the new ipamd in charge.
            for _ in 0..<20 { _ = Self.httpStatus(node, urls[0]) }
            let probes = prober.stop()
            #expect(probes.failed.isEmpty && probes.ok > 0, "\(step): pod probes failed: \(probes.failed.prefix(10))")
            let changed = try n.sim.snapshot(pods: []).difference(from: before)
            #expect(changed.isEmpty, "\(step) changed the node's datapath:\n\(changed.joined(separator: "\n"))")
            let served = Self.servedPods()
            #expect(served.contains("default/web") && served.contains("default-regular"), "\(step): the new ipamd serves both pods: \(served)")
            print("daemonset: \(step) (stop, start, ready) \(ready), pod probes \(probes.ok) ok, \(probes.failed.count) failed")
        }

        // 4. The DaemonSet's container removed: the pods keep working; DEL works without ipamd.
        try ctrd.remove("aws-node")
        for u in urls { #expect(Self.httpStatus(node, u) == 200, "\(u) with no ipamd") }
        #expect(regular.release()?.exitCode == 0, "ctr run regular (DEL without ipamd): \(regular.process.output.suffix(5))")
        #expect(try branch.delete(node).exitCode == 0, "DEL web without ipamd")
        #expect((api.stats()["forbidden"] as? [[String]])?.isEmpty == true, "requests the ClusterRole refused: \(api.stats()["forbidden"] ?? "?")")

        // 5. The node uninstall script leaves nothing of ours.
        let uninstall = try Spawn.run(["/bin/bash", Binaries.root + "/deploy/uninstall-node.sh"], env: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], netns: node)
        #expect(uninstall.exitCode == 0, "uninstall: \(uninstall)")
        for f in ["/opt/cni/bin/aws-cni", "/etc/cni/net.d/10-aws.conflist", "/var/run/aws-node", "/var/log/aws-routed-eni"] {
            #expect(!FileManager.default.fileExists(atPath: f), "\(f) left")
        }
        #expect(FileManager.default.fileExists(atPath: "/opt/cni/bin/portmap"), "the node's other plugins stay")
        #expect(try n.sim.nftRuleset().allSatisfy { $0["table"]?["name"]?.stringValue != "aws-cni" }, "nft table aws-cni left")
        let links = try n.sim.node.ip("-o", "link", "show")
        #expect(!links.contains("vlan.eth.") && !links.contains(": eni") && !links.contains(": vlan"), "pod links left: \(links)")
        #expect(try n.sim.node.ip("rule", "show") == baselineRules, "rules differ from before ipamd")
    }

    /// An introspection answer from the container's ipamd, over its debug socket on the host
    /// path the DaemonSet mounts (nil: no answer).
    static func introspect(_ path: String) -> Any? {
        guard let r = try? HTTPExchange.get(unixSocket: "/var/run/aws-node/ipamd-debug.sock", path) else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(r.body))
    }

    /// The pods ipamd serves (/v1/pods, state "served"): "namespace/name", or the container id
    /// of a pod the runtime named none for.
    static func servedPods() -> Set<String> {
        Set(IpamdProcess.pods(introspect("/v1/pods")).filter { $0.value.state == "served" }.keys)
    }

    /// ipamd's pool has made its start-up changes (warm ENI attached and set up): /v1/enis
    /// lists two pool ENIs with their addresses.
    static func settled() -> Bool { CloudNode.poolCounts(enis: introspect("/v1/enis"))?.enis == 2 }
}
