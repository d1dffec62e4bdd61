import Foundation
import Logging

/// Tells the VPC resource controller what this node wants: the `SecurityGroupsForPods` feature on
/// the node's CNINode, and (legacy controllers) the `has-trunk-attached` node label.
/// Both are read-modify-write with the object's resourceVersion in the merge patch, so a
/// concurrent writer makes the server answer 409 Conflict instead of one write silently losing
/// the other's change; on 409 we read again and retry.
public struct NodeSignaller: Sendable {
    public static let cniNodesPath = "/apis/vpcresources.k8s.aws/v1alpha1/cninodes/"
    public static let nodesPath = "/api/v1/nodes/"
    public static let securityGroupsForPods = "SecurityGroupsForPods"
    public static let trunkLabel = "vpc.amazonaws.com/has-trunk-attached"

    let client: KubeClient
    let nodeName: String
    let logger: Logger
    let maxConflicts: Int
    let sleep: Sleeper

    public init(client: KubeClient, nodeName: String, logger: Logger, maxConflicts: Int = 10, sleep: @escaping Sleeper = realSleep) {
        self.client = client; self.nodeName = nodeName; self.logger = logger; self.maxConflicts = maxConflicts; self.sleep = sleep
    }

    /// Adds `{"name": feature}` to the CNINode's spec.features unless present. A merge patch
    /// replaces a list whole, so the patch carries every feature already there.
    /// Returns whether it changed anything.
    @discardableResult
    public func ensureCNINodeFeature(_ feature: String = securityGroupsForPods) async throws(KubeError) -> Bool {
        try await readModifyWrite(path: Self.cniNodesPath + queryEscape(nodeName)) { obj in
            let spec = obj["spec"] as? [String: Any] ?? [:]
            let features = spec["features"] as? [Any] ?? []
            if features.contains(where: { ($0 as? [String: Any])?["name"] as? String == feature }) { return nil }
            return ["spec": ["features": features + [["name": feature]]]]
        }
    }

    /// Sets a node label unless the node already has it (with any value): the controller flips
    /// `has-trunk-attached` from "false" to "true" once it attached the trunk, and we must not undo that.
    @discardableResult
    public func ensureNodeLabel(_ key: String = trunkLabel, value: String = "false") async throws(KubeError) -> Bool {
        try await readModifyWrite(path: Self.nodesPath + queryEscape(nodeName)) { obj in
            let labels = (obj["metadata"] as? [String: Any])?["labels"] as? [String: Any] ?? [:]
            if labels[key] != nil { return nil }
            return ["metadata": ["labels": [key: value]]]
        }
    }

    /// GET, compute a patch (nil: nothing to do), PATCH with the resourceVersion read; on 409 again.
    func readModifyWrite(path: String, change: ([String: Any]) -> [String: Any]?) async throws(KubeError) -> Bool {
        var conflicts = 0
        while true {
            let body = try await client.call(KubeRequest(path: path))
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
                throw KubeError.decode("\(path): not a JSON object")
            }
            guard var patch = change(obj) else { return false }
            guard let rv = (obj["metadata"] as? [String: Any])?["resourceVersion"] as? String else {
                throw KubeError.decode("\(path): no metadata.resourceVersion")
            }
            var meta = patch["metadata"] as? [String: Any] ?? [:]
            meta["resourceVersion"] = rv
            patch["metadata"] = meta
            let bytes = try KubeClient.jsonBytes(patch)
            do {
                try await client.mergePatch(path: path, patch: bytes)
                logger.info("patched", metadata: ["path": "\(path)", "patch": "\(String(decoding: bytes, as: UTF8.self))"])
                return true
            } catch let e where e.isConflict && conflicts < maxConflicts {
                conflicts += 1
                // The other writer (often the controller) may still be busy with the object;
                // a short, jittered pause keeps us from racing it again at once.
                let pause = Duration.milliseconds(Int.random(in: 20...100) * conflicts)
                logger.debug("conflict; reading again", metadata: ["path": "\(path)", "attempt": "\(conflicts)", "after": "\(pause)"])
                do { try await sleep(pause) } catch { throw KubeError.transport("\(path): cancelled") }
            }
        }
    }
}
