/// Every metric ipamd exports: name, type, labels and meaning, in one place. The Prometheus
/// factory takes help texts and buckets from here, the README's table lists the same, and a test
/// checks the scrape against it. Names are the reference's (aws-node v1.23) wherever the meaning
/// matches, so dashboards keep working; ours follow Prometheus conventions.
public enum MetricKind: String, Sendable {
    case counter, gauge, histogram
}

public struct MetricDefinition: Sendable {
    public var name: String
    public var kind: MetricKind
    public var labels: [String]
    public var help: String
    /// Upper bounds of a histogram's buckets, in the metric's unit.
    public var buckets: [Double]
    /// The reference's name (kept as it is even where it breaks today's naming conventions).
    public var fromReference: Bool

    init(_ name: String, _ kind: MetricKind, _ labels: [String] = [], reference: Bool, buckets: [Double] = [], _ help: String) {
        self.name = name; self.kind = kind; self.labels = labels; self.help = help; self.buckets = buckets; fromReference = reference
    }
}

public enum MetricName: String, Sendable, CaseIterable {
    case buildInfo = "awscni_build_info"
    case ipamdErrors = "awscni_ipamd_error_count"
    case actionsInProgress = "awscni_ipamd_action_inprogress"
    case reconciles = "awscni_reconcile_count"
    case podENIErrors = "awscni_pod_eni_error_count"
    case awsAPILatency = "awscni_aws_api_latency_ms"
    case awsAPIErrors = "awscni_aws_api_error_count"
    case ec2Requests = "awscni_ec2api_req_count"
    case startupDuration = "awscni_ipamd_startup_duration_seconds"
    case rpcLatency = "awscni_rpc_request_duration_seconds"
    case branchPods = "awscni_branch_pods"
    case annotationWait = "awscni_pod_eni_annotation_wait_seconds"
    case watchRestarts = "awscni_pod_watch_restarts_total"
    case watchRelists = "awscni_pod_watch_relists_total"
    case nodeSetupRepairs = "awscni_node_setup_repairs_total"
    case leakedObjectsRemoved = "awscni_leaked_objects_removed_total"
    case checkpointWrites = "awscni_checkpoint_writes_total"
    case totalIPs = "awscni_total_ip_addresses"
    case assignedIPs = "awscni_assigned_ip_addresses"
    case enisAllocated = "awscni_eni_allocated"
    case eniMax = "awscni_eni_max"
    case ipMax = "awscni_ip_max"
    case addIPRequests = "awscni_add_ip_req_count"
    case delIPRequests = "awscni_del_ip_req_count"
    case noAvailableIPs = "awscni_no_available_ip_addresses"
    case assignedPerENI = "awscni_assigned_ip_per_eni"
}

public enum MetricsCatalog {
    static let requestSeconds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30]
    static let waitSeconds: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    static let apiMilliseconds: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    public static let all: [MetricDefinition] = [
        .init(MetricName.buildInfo.rawValue, .gauge, ["version", "swiftversion"], reference: true,
              "Always 1; the labels name the build (the reference's goversion label is swiftversion here)"),
        .init(MetricName.ipamdErrors.rawValue, .counter, ["fn"], reference: true,
              "Errors in ipamd, by the function that failed (AddNetwork, DelNetwork, GetNetwork, checkpoint, nodeSetup, vpcCIDRRefresh, trunkWatch)"),
        .init(MetricName.actionsInProgress.rawValue, .gauge, ["fn"], reference: true,
              "Actions running now, by function (AddNetwork, DelNetwork, GetNetwork, waitForPodDetails, waitForTrunk)"),
        .init(MetricName.reconciles.rawValue, .counter, ["fn"], reference: true,
              "Reconciliation runs, by what was reconciled (nodeSetup, vpcCIDRs, checkpoint)"),
        .init(MetricName.podENIErrors.rawValue, .counter, ["fn"], reference: true,
              "Branch-pod failures, by kind (invalidAnnotation, conflict, trunkMissing, podUIDMismatch)"),
        .init(MetricName.awsAPILatency.rawValue, .histogram, ["api", "error", "status"], reference: true, buckets: apiMilliseconds,
              "Latency of each AWS request attempt in milliseconds, by API, whether it failed, and HTTP status (a histogram here, a summary in the reference)"),
        .init(MetricName.awsAPIErrors.rawValue, .counter, ["api", "error"], reference: true,
              "Failed AWS request attempts, by API and error code"),
        .init(MetricName.ec2Requests.rawValue, .counter, ["fn"], reference: true,
              "EC2 API requests sent (retries included), by action"),
        .init(MetricName.startupDuration.rawValue, .gauge, [], reference: true,
              "Seconds from process start to ready (node set up, sockets bound, plugin installed)"),
        .init(MetricName.rpcLatency.rawValue, .histogram, ["method", "result"], reference: false, buckets: requestSeconds,
              "RPC requests from the plugin, by method and result (success or the error code), in seconds (waits included)"),
        .init(MetricName.branchPods.rawValue, .gauge, [], reference: false,
              "Branch pods ipamd serves now (checkpointed AddNetworks)"),
        .init(MetricName.annotationWait.rawValue, .histogram, ["outcome"], reference: false, buckets: waitSeconds,
              "How long an AddNetwork waited for its pod's details, by outcome (arrived, timedOut, shutdown); only AddNetworks that waited"),
        .init(MetricName.watchRestarts.rawValue, .counter, [], reference: false,
              "Pod watch requests started (each ends at its timeout or an error, then the watch resumes)"),
        .init(MetricName.watchRelists.rawValue, .counter, [], reference: false,
              "Full pod lists (the first one, then after the API server expired the watch's resourceVersion)"),
        .init(MetricName.nodeSetupRepairs.rawValue, .counter, [], reference: false,
              "Node setup (SNAT table, rules, sysctls) found drifted and applied again"),
        .init(MetricName.leakedObjectsRemoved.rawValue, .counter, [], reference: false,
              "Links, rules and routes of pods that are gone, removed at start-up reconciliation"),
        .init(MetricName.checkpointWrites.rawValue, .counter, ["result"], reference: false,
              "Checkpoint file writes, by result (ok, error)"),
        .init(MetricName.totalIPs.rawValue, .gauge, [], reference: true, "Pod addresses the node's ENIs hold (regular pods' pool)"),
        .init(MetricName.assignedIPs.rawValue, .gauge, [], reference: true, "Pool addresses held by regular pods"),
        .init(MetricName.enisAllocated.rawValue, .gauge, [], reference: true, "ENIs the pool uses (the primary included, the trunk not)"),
        .init(MetricName.eniMax.rawValue, .gauge, [], reference: true, "ENIs the instance type allows (MAX_ENI applied)"),
        .init(MetricName.ipMax.rawValue, .gauge, [], reference: true, "Pod addresses the instance type allows on the ENIs the pool may use"),
        .init(MetricName.addIPRequests.rawValue, .counter, [], reference: true, "AddNetwork requests for regular pods"),
        .init(MetricName.delIPRequests.rawValue, .counter, ["reason"], reference: true, "DelNetwork requests for regular pods, by reason (PodDeleted)"),
        .init(MetricName.noAvailableIPs.rawValue, .counter, [], reference: true, "Regular-pod AddNetworks answered without an address"),
        .init(MetricName.assignedPerENI.rawValue, .gauge, ["eni"], reference: true, "Pool addresses held by pods, per ENI"),
    ]

    public static func definition(_ name: String) -> MetricDefinition? { all.first { $0.name == name } }
}

/// What `awscni_build_info` and `ipamd --version` report.
public enum BuildInfo {
    public static let version = "0.13.0"
    public static var swiftVersion: String {
        #if compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #else
        "6.x"
        #endif
    }
}
