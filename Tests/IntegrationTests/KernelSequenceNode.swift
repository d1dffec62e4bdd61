import Datapath
import EnforcingMode
import Foundation
import Glibc
import TestSupport

/// A `SequenceNode` on the real kernel: a simulated node, the real ipamd process with its static
/// pod-ENI file as the control plane, the real aws-cni exec'd for every call (the debug build,
/// so the fault hook can kill it mid-ADD).
final class KernelSequenceNode: SequenceNode {
    let mode: PodSGEnforcingMode
    let sim: SimNode
    let ipamd: IpamdProcess
    let plugin: PluginRunner
    var annotations: [String: String] = [:]

    init(mode: PodSGEnforcingMode) throws {
        self.mode = mode
        sim = try SimNode()
        ipamd = IpamdProcess(sim, mode: mode.rawValue)
        plugin = PluginRunner(sim: sim, ipamd: ipamd, mode: mode.rawValue)
        guard try ipamd.start() else { throw SequenceStartError(log: ipamd.log) }
    }

    struct SequenceStartError: Error { var log: [String] }

    func destroy() {
        ipamd.stop()
        sim.destroy()
    }

    func annotate(pod: String, _ a: Assignment) {
        annotations["default/\(pod)"] = annotation(vlan: a.vlan, ip: a.ip, mac: a.mac)
        ipamd.setPods(annotations)
    }

    func forget(pod: String) {
        annotations["default/\(pod)"] = nil
        ipamd.setPods(annotations)
    }

    func newNetns() throws -> String { try sim.newPodNamespace().path }
    func deleteNetns(_ path: String) throws { sim.deletePodNamespace(path) }

    func result(_ c: Completed) -> CNIRun {
        CNIRun(exitCode: c.exitCode ?? -1, stdout: c.out.trimmingCharacters(in: .whitespacesAndNewlines), killed: c.signal == SIGKILL)
    }

    func cni(_ command: String, _ s: Sandbox, prevResult: String?, netns: String, fault: FaultInjector.Plan?, ipamdReachable: Bool) throws -> CNIRun {
        let spec: String? = switch fault {
        case .fail(let k, let e)?: "fail:\(k):\(e)"
        case .stop(let k)?: "kill:\(k)"
        case .count?: "count"
        case nil: nil
        }
        return result(try plugin.run(command, container: s.container, pod: s.pod, netns: netns, prevResult: prevResult, fault: spec,
                                     ipamdReachable: ipamdReachable))
    }

    func gc(valid: [String]) throws -> CNIRun {
        let list = valid.map { #"{"containerID":"\#($0)","ifname":"eth0"}"# }.joined(separator: ",")
        let env = ["CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"]
        return result(try Spawn.run([plugin.binary], env: env, stdin: Array(plugin.conf(extra: #","cni.dev/valid-attachments":[\#(list)]"#).utf8),
                                    netns: sim.node.path))
    }

    func stopIpamd(kill: Bool) throws { ipamd.stop(kill ? SIGKILL : SIGTERM) }

    func startIpamd() throws {
        guard try ipamd.start() else { throw SequenceStartError(log: ipamd.log) }
    }

    func snapshot(podNamespaces: [String]) throws -> NodeSnapshot { try sim.snapshot(pods: podNamespaces) }

    func servedPods() throws -> [String: String] { try ipamd.servedPods().mapValues(\.container) }
}
