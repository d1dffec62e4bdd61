import Foundation
import IPAMDMetrics
import IPAMDProtocol
import TestSupport
import Testing

/// A real Prometheus (Debian's `prometheus`) scrapes ipamd's `/metrics` inside the node namespace
/// while pods come and go; the series are read back through Prometheus' query API, and
/// `promtool check metrics` judges the exposition.
@Suite(.serialized, .ownThread) struct PrometheusTests {
    static let prometheus = "/usr/bin/prometheus"
    static let promtool = "/usr/bin/promtool"

    /// GET on 127.0.0.1 inside the node namespace (where ipamd and Prometheus listen).
    func get(_ n: SimNode, _ url: String) throws -> Completed {
        try Spawn.run(["/usr/bin/curl", "-sS", "--max-time", "5", url], env: ["PATH": "/usr/bin:/bin"], netns: n.node.path)
    }

    /// One instant-vector query: the value of each series, by its labels.
    func query(_ n: SimNode, _ promQL: String) throws -> [[String: String]: Double] {
        let q = promQL.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? promQL
        let r = try get(n, "http://127.0.0.1:9090/api/v1/query?query=\(q)")
        guard let top = try? JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any], top["status"] as? String == "success",
              let result = (top["data"] as? [String: Any])?["result"] as? [[String: Any]] else { return [:] }
        var out: [[String: String]: Double] = [:]
        for series in result {
            var labels = series["metric"] as? [String: String] ?? [:]
            // The target's labels Prometheus adds to every series.
            for added in ["__name__", "job", "instance"] { labels[added] = nil }
            if let v = series["value"] as? [Any], let text = v.last as? String, let value = Double(text) { out[labels] = value }
        }
        return out
    }

    func scalar(_ n: SimNode, _ promQL: String) throws -> Double? { try query(n, promQL).values.first }

    /// Waits for a condition on Prometheus' answers: scrapes happen on its own schedule, there is
    /// no event to wait for.
    func scrape(_ what: () throws -> Bool) async -> Bool {
        await eventually(.seconds(30), every: .milliseconds(250)) { (try? what()) == true }
    }

    func rpc(_ ipamd: IpamdProcess, _ method: RPCMethod, _ pod: String) throws -> RPCReply {
        try SocketIPAMDClient(path: ipamd.rpcSocket).call(RPCRequest(method: method,
            pod: PodRequest(podName: pod, podNamespace: "default", podUID: "uid-\(pod)", containerID: "c-\(pod)", ifName: "eth0")), timeoutSeconds: 30)
    }

    @Test func prometheusScrapesTheSeriesAsPodsComeAndGo() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.prometheus), "Debian's prometheus package is not installed")
        let n = try SimNode()
        defer { n.destroy() }
        let ipamd = IpamdProcess(n, ["METRICS_BIND_ADDRESS": "127.0.0.1:61678"])
        ipamd.setPods(["default/web1": annotation(vlan: 11, ip: "10.0.40.11", mac: "0a:00:00:00:00:11"),
                       "default/web2": annotation(vlan: 12, ip: "10.0.40.12", mac: "0a:00:00:00:00:12"),
                       "default/bad": #"[{"vlanId":0}]"#])
        try #require(try ipamd.start(), "\(ipamd.log.suffix(20))")
        defer { ipamd.stop() }

        try """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: aws-node
            static_configs:
              - targets: ["127.0.0.1:61678"]
        """.write(toFile: n.work + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prom = try RunningProcess([Self.prometheus, "--config.file=\(n.work)/prometheus.yml", "--storage.tsdb.path=\(n.work)/tsdb",
                                       "--web.listen-address=127.0.0.1:9090", "--log.level=warn"],
                                      env: ["PATH": "/usr/bin:/bin", "HOME": n.work], netns: n.node.path)
        defer { prom.signal(SIGKILL); _ = prom.waitForExit(timeout: 10) }

        // Prometheus up and scraping ipamd.
        #expect(await scrape { try scalar(n, #"up{job="aws-node"}"#) == 1 }, "Prometheus never scraped ipamd: \(prom.output.suffix(10))")
        #expect(try scalar(n, "awscni_build_info") == 1)
        #expect((try scalar(n, "awscni_ipamd_startup_duration_seconds") ?? 0) > 0)
        #expect(try scalar(n, "awscni_branch_pods") == 0)

        // Two pods come: the gauge, the RPC histogram by method and result, the checkpoint writes.
        #expect(try rpc(ipamd, .addNetwork, "web1").success)
        #expect(try rpc(ipamd, .addNetwork, "web2").success)
        #expect(try rpc(ipamd, .addNetwork, "bad").error?.code == .invalidAnnotation)
        #expect(await scrape { try scalar(n, "awscni_branch_pods") == 2 })
        let adds = try query(n, "awscni_rpc_request_duration_seconds_count")
        #expect(adds[["method": "AddNetwork", "result": "success"]] == 2, "\(adds)")
        #expect(adds[["method": "AddNetwork", "result": "invalidAnnotation"]] == 1, "\(adds)")
        #expect(try scalar(n, #"awscni_pod_eni_error_count{fn="invalidAnnotation"}"#) == 1)
        #expect(try scalar(n, #"awscni_checkpoint_writes_total{result="ok"}"#) == 2)
        #expect(try scalar(n, #"awscni_reconcile_count{fn="checkpoint"}"#) == 1)
        // A histogram's buckets are cumulative and end at +Inf with the count.
        let buckets = try query(n, #"awscni_rpc_request_duration_seconds_bucket{method="AddNetwork",result="success"}"#)
        #expect(buckets[["method": "AddNetwork", "result": "success", "le": "+Inf"]] == 2, "\(buckets)")

        // One goes.
        #expect(try rpc(ipamd, .delNetwork, "web1").success)
        #expect(await scrape { try scalar(n, "awscni_branch_pods") == 1 })
        #expect(try query(n, "awscni_rpc_request_duration_seconds_count")[["method": "DelNetwork", "result": "success"]] == 1)
        #expect(try scalar(n, #"awscni_ipamd_action_inprogress{fn="AddNetwork"}"#) == 0)

        // promtool: the exposition parses; the only lint findings are the reference's `_count`
        // counter names, kept for dashboards (README "Metrics").
        let exposition = try get(n, "http://127.0.0.1:61678/metrics")
        #expect(exposition.exitCode == 0)
        let check = try Spawn.run([Self.promtool, "check", "metrics"], env: ["PATH": "/usr/bin:/bin"], stdin: exposition.stdout)
        let findings = (check.out + check.err).split(separator: "\n").map(String.init)
        let referenceNames = Set(MetricsCatalog.all.filter { $0.fromReference && $0.kind == .counter }.map(\.name))
        for f in findings {
            let name = String(f.split(separator: " ").first ?? "")
            let naming = f.hasSuffix(#"counter metrics should have "_total" suffix"#)
                || f.hasSuffix(#"non-histogram and non-summary metrics should not have "_count" suffix"#)
            #expect(naming && referenceNames.contains(name), "promtool: \(f)")
        }
        #expect(check.exitCode == 0 || (check.exitCode == 3 && !findings.isEmpty), "promtool exit \(String(describing: check.exitCode)): \(check.err)")
    }
}
