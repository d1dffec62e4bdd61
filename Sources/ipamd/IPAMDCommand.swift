import ArgumentParser
import Foundation
import IPAMDMetrics

/// `ipamd` runs the agent; its subcommands are an operator's view of a running one, over the
/// root-only debug socket.
@main
struct IPAMDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipamd",
        abstract: "The security-groups-for-pods node agent, and an operator's view of a running one.",
        discussion: """
            Exit codes of pods and explain: 0 fine, 1 the datapath differs from its plan (explain) \
            or some pod's does (pods), 3 the pod is not served by this ipamd, 4 ipamd cannot be reached.
            """,
        version: BuildInfo.version,
        subcommands: [Serve.self, Pods.self, Explain.self],
        defaultSubcommand: Serve.self)
}

/// Where the running ipamd answers (its debug socket).
struct DebugSocketOption: ParsableArguments {
    @Option(name: .customLong("socket"), help: "ipamd's debug socket (default: IPAMD_DEBUG_SOCKET, else /var/run/aws-node/ipamd-debug.sock)")
    var path: String?

    var resolved: String {
        path ?? ProcessInfo.processInfo.environment["IPAMD_DEBUG_SOCKET"] ?? "/var/run/aws-node/ipamd-debug.sock"
    }
}

/// Exit codes a script can use.
enum ViewExit {
    static let drift = ExitCode(1)
    static let notServed = ExitCode(3)
    static let unreachable = ExitCode(4)
}
