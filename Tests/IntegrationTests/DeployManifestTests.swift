import Foundation
import Glibc
import IPAMDCore
import TestSupport
import Testing

/// deploy/aws-node.yaml (issue 15): valid against the Kubernetes schemas (PyPI
/// kubernetes-validate, offline), shaped as the reference's aws-node so it replaces it in place,
/// its environment accepted by ipamd's configuration and consistent with its mounts and probes,
/// and its ClusterRole enough for everything ipamd asks the API server, which the test API server
/// enforces as kube-apiserver's RBAC authorizer would.
@Suite(.ownThread) struct DeployManifestTests {
    static let path = Binaries.root + "/deploy/aws-node.yaml"

    /// The manifest's objects, parsed (YAML → JSON by PyYAML, which kubernetes-validate uses).
    static func objects() throws -> [[String: Any]] {
        let r = try Spawn.run(["/usr/bin/env", "python3", "-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))", path],
                              env: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        try #require(r.exitCode == 0, "YAML: \(r)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [[String: Any]])
    }

    static func object(_ kind: String) throws -> [String: Any] {
        try #require(try objects().first { $0["kind"] as? String == kind }, "no \(kind) in \(path)")
    }

    struct DaemonSet {
        let raw: [String: Any]
        var spec: [String: Any] { raw["spec"] as? [String: Any] ?? [:] }
        var pod: [String: Any] { (spec["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:] }
        var container: [String: Any] { (pod["containers"] as? [[String: Any]])?.first ?? [:] }
        /// hostPath → the path the container sees it at.
        var mounts: [String: String] {
            let volumes = pod["volumes"] as? [[String: Any]] ?? []
            let hostPath = Dictionary(uniqueKeysWithValues: volumes.compactMap { v in
                ((v["hostPath"] as? [String: Any])?["path"] as? String).map { (v["name"] as? String ?? "", $0) }
            })
            var m: [String: String] = [:]
            for mount in container["volumeMounts"] as? [[String: Any]] ?? [] {
                if let h = hostPath[mount["name"] as? String ?? ""] { m[h] = mount["mountPath"] as? String }
            }
            return m
        }
        /// The container's environment as ipamd would get it on node-1.
        var environment: [String: String] {
            var env: [String: String] = [:]
            for e in container["env"] as? [[String: Any]] ?? [] {
                let name = e["name"] as? String ?? ""
                if let v = e["value"] as? String {
                    env[name] = v
                } else if (((e["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String) == "spec.nodeName" {
                    env[name] = "node-1"
                }
            }
            return env
        }
        func probe(_ name: String) -> (host: String?, port: Int?, path: String?) {
            let get = (container[name] as? [String: Any])?["httpGet"] as? [String: Any]
            return (get?["host"] as? String, get?["port"] as? Int, get?["path"] as? String)
        }
    }

    @Test func validAgainstTheKubernetesSchemas() throws {
        let r = try Spawn.run(["/usr/bin/env", "kubernetes-validate", "--strict", Self.path],
                              env: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        #expect(r.exitCode == 0, "kubernetes-validate --strict: \(r)")
        let validated = (r.out + r.err).split(separator: "\n").filter { $0.contains("passed for resource") }
        #expect(validated.count == 4, "4 objects validated: \(r.out)")
    }

    /// Names, labels and settings an operator's tooling (and the EKS add-on) expects of aws-node.
    @Test func shapedAsTheReferencesAwsNode() throws {
        let ds = DaemonSet(raw: try Self.object("DaemonSet"))
        let meta = ds.raw["metadata"] as? [String: Any]
        #expect(meta?["name"] as? String == "aws-node" && meta?["namespace"] as? String == "kube-system")
        #expect(((ds.spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String]) == ["k8s-app": "aws-node"])
        let update = ds.spec["updateStrategy"] as? [String: Any]
        #expect(update?["type"] as? String == "RollingUpdate" && (update?["rollingUpdate"] as? [String: Any])?["maxUnavailable"] as? String == "10%")
        #expect(ds.pod["hostNetwork"] as? Bool == true && ds.pod["priorityClassName"] as? String == "system-node-critical")
        #expect((ds.pod["tolerations"] as? [[String: String]])?.contains(["operator": "Exists"]) == true, "tolerates every taint")
        #expect(ds.pod["serviceAccountName"] as? String == "aws-node")
        let security = ds.container["securityContext"] as? [String: Any]
        let caps = security?["capabilities"] as? [String: [String]]
        #expect(security?["privileged"] as? Bool == false && caps == ["drop": ["ALL"], "add": ["NET_ADMIN"]], "\(security ?? [:])")
        // The reference's host paths, at the reference's container paths.
        let mounts = ds.mounts
        for (host, inContainer) in ["/opt/cni/bin": "/host/opt/cni/bin", "/etc/cni/net.d": "/host/etc/cni/net.d",
                                    "/var/log/aws-routed-eni": "/host/var/log/aws-routed-eni", "/var/run/aws-node": "/var/run/aws-node"] {
            #expect(mounts[host] == inContainer, "\(host) mounted at \(mounts[host] ?? "nothing")")
        }
        let binding = try Self.object("ClusterRoleBinding")
        #expect(((binding["roleRef"] as? [String: Any])?["name"] as? String) == "aws-node")
        #expect((binding["subjects"] as? [[String: String]]) == [["kind": "ServiceAccount", "name": "aws-node", "namespace": "kube-system"]])
    }

    /// ipamd accepts the environment as it is (an unknown value would stop it at start), and
    /// every path it writes lands on a host mount; the probes reach its introspection listener.
    @Test func environmentAcceptedAndConsistentWithMountsAndProbes() throws {
        let ds = DaemonSet(raw: try Self.object("DaemonSet"))
        let config = try IPAMDConfig.fromEnvironment(ds.environment)
        let mounts = ds.mounts
        #expect(config.cniBinDir == mounts["/opt/cni/bin"] && config.cniConfDir == mounts["/etc/cni/net.d"])
        #expect(config.sysctlRoot + "/net" == mounts["/proc/sys/net"], "sysctls written through the host's /proc/sys/net")
        let runDir = try #require(mounts["/var/run/aws-node"])
        for file in [config.rpcSocket, config.debugSocket, config.checkpointPath] {
            #expect(file.hasPrefix(runDir + "/"), "\(file) is under the run-dir mount, where the plugin on the host finds it")
        }
        #expect(config.logFile.hasPrefix(try #require(mounts["/var/log/aws-routed-eni"]) + "/"), "ipamd's log on the host: \(config.logFile)")
        // The plugin runs on the host: the conflist's paths are host paths.
        #expect(config.conflist.pluginLogFile.hasPrefix("/var/log/aws-routed-eni/") && config.conflist.ipamdSocket == config.rpcSocket)
        #expect(config.node.enablePodENI && config.pool.warmENI == 1)
        guard case .tcp(let host, let port)? = config.servers.introspection else { Issue.record("no introspection listener"); return }
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let p = ds.probe(probe)
            #expect(p.host == host && p.port == port && p.path == path, "\(probe): \(p)")
        }
        guard case .tcp(_, let metricsPort)? = config.servers.metrics else { Issue.record("no metrics listener"); return }
        #expect((ds.container["ports"] as? [[String: Any]])?.first?["containerPort"] as? Int == metricsPort)
    }

    /// ipamd with ENABLE_POD_ENI and the trunk label (every kind of request it makes: the pod
    /// list and watch, the Node and CNINode reads and patches) against the test API server
    /// enforcing the manifest's ClusterRole: nothing is refused. Without the Node patch rule,
    /// that request is refused: the enforcement can fail.
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"), arguments: [false, true])
    func clusterRoleCoversEveryRequest(withoutNodePatch: Bool) throws {
        let role = try Self.object("ClusterRole")
        var rules = try #require(role["rules"] as? [[String: Any]])
        if withoutNodePatch {
            rules = rules.map { r in
                guard (r["resources"] as? [String]) == ["nodes"] else { return r }
                var r = r
                r["verbs"] = (r["verbs"] as? [String] ?? []).filter { $0 != "patch" }
                return r
            }
        }
        let k = try KubernetesIpamdTests.Cluster()
        defer { k.destroy() }
        k.api.control(["op": "rbac", "rules": rules])
        try k.start(["KUBECONFIG": k.api.kubeconfigPath, "ENABLE_POD_ENI": "true", "ENABLE_TRUNK_LABEL": "true"])
        let log = k.ipamd.process!
        #expect(log.waitForLine(containingAll: ["node signalling done", "CNINode feature"], timeout: 30), "\(k.ipamd.log.suffix(10))")
        #expect(k.waitForOpenWatch(timeout: 30), "the pod watch: \(k.api.stats())")
        let forbidden = { (k.api.stats()["forbidden"] as? [[String]]) ?? [["?"]] }
        if withoutNodePatch {
            #expect(log.waitForLine(containing: "forbidden", timeout: 30), "\(k.ipamd.log.suffix(10))")
            #expect(forbidden().contains(["patch", "", "nodes"]), "\(forbidden())")
        } else {
            #expect(log.waitForLine(containingAll: ["node signalling done", "node label"], timeout: 30), "\(k.ipamd.log.suffix(10))")
            #expect(forbidden().isEmpty, "requests the ClusterRole does not allow: \(forbidden())")
            let labels = (k.object(KubernetesIpamdTests.nodePath)?["metadata"] as? [String: Any])?["labels"] as? [String: String]
            #expect(labels?["vpc.amazonaws.com/has-trunk-attached"] == "false")
        }
    }
}
