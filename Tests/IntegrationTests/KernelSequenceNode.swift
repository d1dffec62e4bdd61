import Datapath
import EnforcingMode
import Foundation
import Glibc
import TestSupport

/// A `SequenceNode` on the real kernel: a simulated node, the real ipamd process with its static
/// pod-ENI file as the control plane, the real aws-cni exec'd for every call (the debug build,
/// so the fault hook can kill it mid-ADD). With `regularPods`, the node's cloud is the simulator
/// (moto, instance metadata) and ipamd's pool serves the pods nobody annotates.
final class KernelSequenceNode: SequenceNode {
    let mode: PodSGEnforcingMode
    let sim: SimNode
    let ipamd: IpamdProcess
    let plugin: PluginRunner
    let cloud: CloudNode?
    var annotations: [String: String] = [:]
    var servesRegularPods: Bool { cloud != nil }

    init(mode: PodSGEnforcingMode, regularPods: Bool = false) throws {
        self.mode = mode
        if regularPods {
            // The pool on the primary ENI only (MAX_ENI=2: it and the trunk; an m5.4xlarge's ENI takes 29 pod
            // addresses, more than a sequence ever holds, even with the addresses of DELs ipamd
            // missed until its next start), two kept free, none cooling: the pool grows and
            // shrinks through EC2 alone and never attaches or detaches an ENI, so the node's
            // links and rules change only with the pods (what the model compares).
            let c = try CloudNode(mode: mode.rawValue, instanceType: "m5.4xlarge",
                                  ["MAX_ENI": "2", "WARM_IP_TARGET": "2", "MINIMUM_IP_TARGET": "4", "IP_COOLDOWN_PERIOD": "0"])
            cloud = c
            sim = c.sim
            ipamd = c.ipamd
        } else {
            cloud = nil
            sim = try SimNode()
            ipamd = IpamdProcess(sim, mode: mode.rawValue)
        }
        plugin = PluginRunner(sim: sim, ipamd: ipamd, mode: mode.rawValue)
        guard try ipamd.start() else {
            destroy()
            throw SequenceStartError(log: ipamd.log)
        }
    }

    struct SequenceStartError: Error { var log: [String] }

    func destroy() {
        if let cloud {
            cloud.destroy()
        } else {
            ipamd.stop()
            sim.destroy()
        }
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
