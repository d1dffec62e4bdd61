import Foundation
import Glibc
import TestSupport
import Testing

/// The release ipamd against the test API server (scripts/tests/fake-apiserver.py: real HTTPS and
/// wire format on the node namespace's loopback), driven through the release aws-cni: the
/// kubeconfig and in-cluster configurations, the pod cache in /v1/pods, CNI codes for a pending
/// branch pod (11, at the wait bound), a regular pod (103) and a UID mismatch (100), an ADD
/// waiting when ipamd is told to stop (11, at once), node signalling (CNINode features kept,
/// trunk label), and configuration errors. ipamd runs in the simulated node's namespace and
/// writes only under its work directory.
@Suite(.ownThread) struct KubernetesIpamdTests {
    static let cniNodePath = "/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1"
    static let nodePath = "/api/v1/nodes/node-1"

    struct Failure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    /// A simulated node, the API server on its loopback with the shell test's objects (db: a
    /// branch pod with its annotation; late: a branch pod without; web: a regular pod; the Node
    /// and the CNINode with another feature), and ipamd's environment for the Kubernetes source.
    final class Cluster {
        let sim: SimNode
        let api: FakeAPIServer
        let ipamd: IpamdProcess

        init(waitTimeout: String = "1s", extraPods: [[String: Any]] = []) throws {
            sim = try SimNode()
            do {
                api = try FakeAPIServer(netns: sim.node.name)
            } catch {
                sim.destroy()
                throw error
            }
            for p in [pod("db", uid: "u-db", branch: true, annotation: podENI), pod("late", uid: "u-late", branch: true),
                      pod("web", uid: "u-web", branch: false)] + extraPods {
                api.control(["op": "put_pod", "pod": p])
            }
            api.control(["op": "put_object", "path": KubernetesIpamdTests.nodePath,
                         "object": ["kind": "Node", "metadata": ["name": "node-1", "labels": ["kubernetes.io/os": "linux"]]]])
            api.control(["op": "put_object", "path": KubernetesIpamdTests.cniNodePath,
                         "object": ["kind": "CNINode", "metadata": ["name": "node-1"], "spec": ["features": [["name": "CustomNetworking", "value": "x"]]]]])
            ipamd = IpamdProcess(sim, ["POD_ENI_SOURCE": "kubernetes", "MY_NODE_NAME": "node-1", "POD_ENI_WAIT_TIMEOUT": waitTimeout])
        }

        func destroy() {
            ipamd.stop(SIGKILL)
            api.close()
            try? FileManager.default.removeItem(atPath: api.dir)
            sim.destroy()
        }

        /// Starts ipamd and waits until it is ready and has the API server's first pod list.
        func start(_ extra: [String: String]) throws {
            guard try ipamd.start(extra) else { throw Failure("ipamd did not start: \(ipamd.log.suffix(10))") }
            guard ipamd.process!.waitForLine(containingAll: ["pod list", "pods=3"], timeout: 30) else {
                throw Failure("no pod list of 3 pods: \(ipamd.log.suffix(10))")
            }
        }

        var conf: String {
            #"{"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni","ipamdSocket":"\#(ipamd.rpcSocket)","pluginLogFile":"\#(sim.work)/plugin.log"}"#
        }

        func addEnv(_ name: String, uid: String) -> [String: String] {
            ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c-\(name)", "CNI_NETNS": "/var/run/netns/none", "CNI_IFNAME": "eth0",
             "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=\(name);K8S_POD_UID=\(uid)"]
        }

        /// aws-cni ADD as kubelet runs it, in the node's namespace; how long it took.
        func add(_ name: String, uid: String) throws -> (Completed, Duration) {
            let t0 = ContinuousClock.now
            let r = try Spawn.run([Binaries.awsCNI], env: addEnv(name, uid: uid), stdin: Array(conf.utf8), netns: sim.node.path)
            return (r, ContinuousClock.now - t0)
        }

        /// Polls the API server's count of open watches (nothing else signals that ipamd's watch
        /// request has arrived) until one is open or the deadline passes.
        func waitForOpenWatch(timeout: Double) -> Bool {
            let deadline = ContinuousClock.now + .seconds(timeout)
            while ContinuousClock.now < deadline {
                if api.stats()["open_watches"] as? Int ?? 0 >= 1 { return true }
                usleep(20_000)
            }
            return false
        }

        func object(_ path: String) -> [String: Any]? { api.control(["op": "get_object", "path": path])["object"] as? [String: Any] }
    }

    // MARK: configuration errors

    struct ConfigCase: CustomTestStringConvertible, Sendable {
        var name: String
        var env: [String: String]
        /// Each problem line (without "ipamd: invalid configuration: ") starts with one of these.
        var problems: [String]
        /// ...and contains this, when given.
        var detail: String?
        var testDescription: String { name }
    }

    static let configCases: [ConfigCase] = [
        ConfigCase(name: "no MY_NODE_NAME", env: ["MY_NODE_NAME": ""], problems: ["MY_NODE_NAME: not set"]),
        ConfigCase(name: "bad POD_ENI_WAIT_TIMEOUT", env: ["POD_ENI_WAIT_TIMEOUT": "1h"],
                   problems: [#"POD_ENI_WAIT_TIMEOUT: invalid value "1h"; accepted values: a duration from 0 to 25 seconds"#]),
        ConfigCase(name: "unreadable kubeconfig", env: ["KUBECONFIG": "WORK/missing"],
                   problems: ["KUBECONFIG: kubernetes config: cannot read kubeconfig WORK/missing"]),
        ConfigCase(name: "in-cluster without KUBERNETES_SERVICE_HOST", env: ["KUBERNETES_SERVICE_ACCOUNT_DIR": "WORK/nowhere"],
                   problems: ["KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_ACCOUNT_DIR: "], detail: "set KUBECONFIG to run outside a cluster"),
        ConfigCase(name: "every problem at once", env: ["MY_NODE_NAME": "", "POD_ENI_WAIT_TIMEOUT": "1h", "AWS_REGION": "Mars 1", "ENABLE_TRUNK_LABEL": "maybe"],
                   problems: ["MY_NODE_NAME: not set", #"POD_ENI_WAIT_TIMEOUT: invalid value "1h""#, #"AWS_REGION: "Mars 1" is not a region name"#,
                              #"ENABLE_TRUNK_LABEL: invalid value "maybe"; accepted values: true, false"#]),
    ]

    /// Exit 2 before serving or installing anything; one line per problem naming the variable,
    /// nothing else printed. (No API server: none of these gets as far as connecting.)
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"), arguments: configCases)
    func configurationErrors(_ c: ConfigCase) throws {
        let sim = try SimNode()
        defer { sim.destroy() }
        let ipamd = IpamdProcess(sim, ["POD_ENI_SOURCE": "kubernetes", "MY_NODE_NAME": "node-1", "POD_ENI_WAIT_TIMEOUT": "1s"])
        let env = ipamd.env.merging(c.env.mapValues { $0.replacingOccurrences(of: "WORK/", with: sim.work + "/") }) { _, b in b }
        let r = try Spawn.run([Binaries.ipamd], env: env, netns: sim.node.path)
        #expect(r.exitCode == 2 && r.signal == nil, "\(r)")
        let (problems, other) = ipamdConfigProblems(r.out + r.err)
        #expect(other.isEmpty, "printed more than its problems: \(other)")
        #expect(problems.count == c.problems.count, "one line per problem: \(problems)")
        for p in c.problems.map({ $0.replacingOccurrences(of: "WORK/", with: sim.work + "/") }) {
            #expect(problems.contains { $0.hasPrefix(p) }, "no problem line starting \(p) in \(problems)")
        }
        if let d = c.detail { #expect(problems.contains { $0.contains(d) }, "no problem says \(d): \(problems)") }
        #expect(!FileManager.default.fileExists(atPath: ipamd.rpcSocket) && !FileManager.default.fileExists(atPath: ipamd.installedPlugin),
                "a refused configuration must not serve or install the plugin")
    }

    // MARK: the Kubernetes source

    /// With a kubeconfig: /v1/pods shows the node's pods from the list; ADD answers from the
    /// cache without any API request: 11 at the 1 s bound for a pending branch pod, 103 for a
    /// regular pod, 100 naming both UIDs for a UID mismatch; the CNINode gets
    /// SecurityGroupsForPods with its other feature kept and the node the trunk label with its
    /// other labels kept; SIGTERM exits 0.
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"))
    func kubeconfigSource() throws {
        let k = try Cluster()
        defer { k.destroy() }
        try k.start(["KUBECONFIG": k.api.kubeconfigPath, "ENABLE_POD_ENI": "true", "ENABLE_TRUNK_LABEL": "true"])

        let pods = try k.ipamd.podsByName()
        #expect(Set(pods.keys) == ["db", "late", "web"], "\(pods)")
        let db = try #require(pods["db"])
        #expect(db["state"] as? String == "ready" && db["branch"] as? Bool == true && db["vlanID"] as? Int == 7
                && db["eniID"] as? String == "eni-0a1b2c3d4e5f60718" && db["ipv4"] as? String == "10.0.40.12"
                && db["podUID"] as? String == "u-db" && db["namespace"] as? String == "default", "db: \(db)")
        let rfc3339 = ISO8601DateFormatter()
        rfc3339.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let arrived = (db["annotationArrivedAt"] as? String).flatMap { rfc3339.date(from: $0) }
        #expect(arrived.map { abs($0.timeIntervalSinceNow) < 600 } == true, "db: annotation arrival time \(db["annotationArrivedAt"] ?? "none")")
        #expect(pods["late"]?["state"] as? String == "pending" && pods["late"]?["branch"] as? Bool == true, "late: \(pods["late"] ?? [:])")
        #expect(pods["web"]?["state"] as? String == "regular" && pods["web"]?["branch"] as? Bool == false, "web: \(pods["web"] ?? [:])")

        // ipamd's own API traffic first: node signalling (its log says when) and the watch (the
        // server's count of open watches: nothing else tells when the request has arrived).
        let log = k.ipamd.process!
        #expect(log.waitForLine(containingAll: ["node signalling done", "CNINode feature"], timeout: 30), "\(k.ipamd.log.suffix(10))")
        #expect(log.waitForLine(containingAll: ["node signalling done", "node label"], timeout: 30), "\(k.ipamd.log.suffix(10))")
        #expect(k.waitForOpenWatch(timeout: 30), "the pod watch never reached the API server: \(k.api.stats())")
        let before = k.api.requests()
        #expect(before > 0, "the test API server counts requests")
        let (late, lateTook) = try k.add("late", uid: "u-late")
        #expect(late.cniCode == 11, "annotation never arrives: \(late)")
        #expect((late.json?["details"] as? String)?.contains("no vpc.amazonaws.com/pod-eni annotation yet") == true, "\(late.out)")
        #expect(lateTook >= .milliseconds(900) && lateTook < .seconds(15), "answered at the 1 s bound, not \(lateTook)")
        let (web, _) = try k.add("web", uid: "u-web")
        #expect(web.cniCode == 103, "regular pod: \(web)")
        let (db2, _) = try k.add("db", uid: "u-recreated")
        #expect(db2.cniCode == 100, "UID mismatch: \(db2)")
        #expect((db2.json?["details"] as? String)?.contains("has UID u-db in the API server, not u-recreated") == true, "\(db2.out)")
        #expect(k.api.requests() == before, "the ADDs made API requests")

        let cniNode = k.object(Self.cniNodePath)
        let features = ((cniNode?["spec"] as? [String: Any])?["features"] as? [[String: String]]) ?? []
        #expect(features == [["name": "CustomNetworking", "value": "x"], ["name": "SecurityGroupsForPods"]], "CNINode: \(cniNode ?? [:])")
        let node = k.object(Self.nodePath)
        let labels = (node?["metadata"] as? [String: Any])?["labels"] as? [String: String]
        #expect(labels == ["kubernetes.io/os": "linux", "vpc.amazonaws.com/has-trunk-attached": "false"], "node: \(node ?? [:])")

        let end = k.ipamd.stop()
        #expect(end?.exitCode == 0 && end?.signal == nil, "SIGTERM: \(String(describing: end))")
    }

    /// In-cluster (service account directory, KUBERNETES_SERVICE_HOST/PORT): the pods are
    /// listed, and an annotation added later arrives through the watch.
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"))
    func inClusterSource() throws {
        let k = try Cluster()
        defer { k.destroy() }
        let sa = k.sim.work + "/sa"
        try FileManager.default.createDirectory(atPath: sa, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: k.api.dir + "/ca.crt", toPath: sa + "/ca.crt")
        try "token-1".write(toFile: sa + "/token", atomically: true, encoding: .utf8)
        // As the shell test ran it: ENABLE_POD_ENI unset (false); the cache still tracks annotations.
        try k.start(["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(k.api.port), "KUBERNETES_SERVICE_ACCOUNT_DIR": sa,
                     "ENABLE_POD_ENI": "false"])
        #expect(k.ipamd.log.contains { $0.contains("kubernetes pod-ENI source") && $0.contains("in-cluster") && $0.contains("https://127.0.0.1:\(k.api.port)") },
                "not connected in-cluster: \(k.ipamd.log.suffix(10))")
        #expect(try k.ipamd.podsByName()["late"]?["state"] as? String == "pending")

        let mark = k.ipamd.log.count
        k.api.control(["op": "annotate", "key": "default/late", "name": "vpc.amazonaws.com/pod-eni", "value": podENI(vlan: 9, ip: "10.0.40.9")])
        #expect(k.ipamd.process!.waitForLine(containingAll: ["pod-eni annotation arrived", "default/late"], from: mark, timeout: 30),
                "the late annotation did not arrive through the watch: \(k.ipamd.log.suffix(10))")
        let late = try k.ipamd.podsByName()["late"]
        #expect(late?["state"] as? String == "ready" && late?["vlanID"] as? Int == 9 && late?["ipv4"] as? String == "10.0.40.9", "late: \(late ?? [:])")

        let end = k.ipamd.stop()
        #expect(end?.exitCode == 0 && end?.signal == nil, "SIGTERM: \(String(describing: end))")
    }

    /// An ADD waiting in ipamd for a branch pod's annotation when ipamd gets SIGTERM is answered
    /// "try again later" (11, from ipamd itself) at once, not at the wait bound and not with 100;
    /// ipamd then exits 0.
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"))
    func sigtermAnswersWaitingAddWithTryAgain() throws {
        let bound = 20.0
        let k = try Cluster(waitTimeout: "\(Int(bound))s")
        defer { k.destroy() }
        try k.start(["KUBECONFIG": k.api.kubeconfigPath, "ENABLE_POD_ENI": "true"])
        let log = k.ipamd.process!
        let mark = k.ipamd.log.count

        let add = BackgroundRun([Binaries.awsCNI], env: k.addEnv("late", uid: "u-late"), stdin: Array(k.conf.utf8), netns: k.sim.node.path)
        let waiting = log.waitForLine(containingAll: ["AddNetwork waits for pod details", "default/late"], from: mark, timeout: bound / 2)
        try #require(waiting, "ipamd never said the ADD waits: \(k.ipamd.log.suffix(10))")
        let end = k.ipamd.stop(SIGTERM)

        let outcome = try add.wait(timeout: bound + 15)
        let (r, took) = try #require(outcome, "the ADD did not end")
        #expect(r.cniCode == 11, "ADD during shutdown: \(r)")
        #expect(r.json?["msg"] as? String == "ipamd is shutting down", "answered by ipamd, not a dropped connection: \(r.out)")
        #expect(took < .seconds(bound), "the ADD returned after \(took), at the \(bound) s wait bound rather than at SIGTERM")
        #expect(end?.exitCode == 0 && end?.signal == nil, "ipamd after SIGTERM: \(String(describing: end))")
    }
}
