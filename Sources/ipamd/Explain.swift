import ArgumentParser
import Datapath
import Foundation
import IPAMDCore

/// `ipamd explain <namespace/name>`: the pod's live datapath against its plan.
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a served pod's live datapath with its plan: each link, address, route, rule and neighbour.",
        discussion: "Exit 0 when everything is present as planned, 1 when something is missing or different, 3 when the pod is not served, 4 when ipamd cannot be reached.")

    @Argument(help: "The pod as namespace/name (or the container id of a pod started without a pod identity).")
    var pod: String

    @OptionGroup var socket: DebugSocketOption
    @Flag(help: "Print the JSON ipamd answered instead of the table.")
    var json = false

    func run() async throws {
        let key = pod.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "?#"))) ?? pod
        let body = try await DebugClient(socket: socket.resolved).get("/v1/explain/" + key)
        let e = try JSONDecoder().decode(PodExplanation.self, from: Data(body))
        if json {
            print(String(decoding: body, as: UTF8.self))
        } else {
            print("pod \(e.pod)  container \(e.containerID.prefix(12))  mode \(e.mode)  VLAN \(e.vlanID)  IP \(e.ipv4)  netns \(e.netns ?? "-")")
            var rows = [["STATUS", "KIND", "SIDE", "OBJECT", "DETAIL", "SHOW WITH"]]
            for o in e.objects {
                rows.append([o.status.rawValue, o.kind.rawValue, o.side.rawValue, o.what, o.detail ?? "", o.command])
            }
            print(table(rows), terminator: "")
            print(e.healthy ? "healthy: every object is as planned" : "NOT healthy: \(e.summary)")
        }
        if !e.healthy { throw ViewExit.drift }
    }
}
