import Foundation
import Glibc
import TestSupport

/// A TCP server in a namespace that answers each connection with the peer's address: a test
/// learns the source address the far end saw (its own, or SNATed to the node's).
final class WhoamiServer {
    private let process: RunningProcess

    struct DidNotListen: Error { var output: [String] }

    static let script = """
        import socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
        print("listening", flush=True)
        while True:
            c, peer = s.accept(); c.sendall((peer[0] + "\\n").encode()); c.close()
        """

    /// Returns once the server listens on `port` in the namespace at `netns`.
    init(netns: String, port: Int = 8080) throws {
        process = try RunningProcess(["/usr/bin/python3", "-c", Self.script, String(port)], env: ["PATH": "/usr/bin:/bin"], netns: netns)
        guard process.waitForLine(containing: "listening", timeout: 30) else {
            stop()
            throw DidNotListen(output: process.output)
        }
    }

    func stop() {
        process.signal(SIGKILL)
        _ = process.waitForExit(timeout: 10)
    }

    deinit { stop() }

    /// From `netns`, connects to `address`:`port` (from `source` when given) and returns the
    /// source address the server saw; nil when no answer came within `timeout` seconds.
    static func sourceSeen(from netns: String, _ address: String, port: Int = 8080, source: String? = nil, timeout: Double = 10) -> String? {
        let client = """
            import socket, sys
            src = (sys.argv[4], 0) if sys.argv[4] else None
            c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]), source_address=src)
            print(c.makefile().readline().strip())
            """
        guard let r = try? Spawn.run(["/usr/bin/python3", "-c", client, address, String(port), String(timeout), source ?? ""],
                                     env: ["PATH": "/usr/bin:/bin"], netns: netns), r.exitCode == 0 else { return nil }
        let seen = String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return seen.isEmpty ? nil : seen
    }
}
