// Throwaway network namespaces for privileged tests, like containernetworking/plugins'
// pkg/testutils: each test makes its own, so tests run in parallel and never touch the host's
// interfaces, routes or rules.
//
// Gate every test that uses them on root, and keep the namespace alive with a `defer` (ARC may
// otherwise release it, and delete it, right after its last use):
//
//     @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
//     func something() throws {
//         let ns = try TestNamespace.create("nl")
//         defer { ns.destroy() }
//         let client = try LibNLClient(namespacePath: ns.path)
//         ...
//     }
import Foundation

/// Whether the tests run as root (namespaces, links and rules need CAP_NET_ADMIN/CAP_SYS_ADMIN).
public let isRoot: Bool = geteuid() == 0

/// A named network namespace (`ip netns add`), deleted by `destroy()` or at deinit.
public final class TestNamespace {
    /// A failed command, with what it printed on stderr.
    public struct CommandFailed: Error, CustomStringConvertible {
        public var command: [String]
        public var status: Int32
        public var stderr: String
        public var description: String { "\(command.joined(separator: " ")) exited \(status): \(stderr)" }
    }

    /// The iproute2 binary (PATH may lack /usr/sbin when tests run under a minimal environment).
    public static let ipPath: String = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"

    public let name: String
    /// The bind-mounted namespace file, what `LibNLClient(namespacePath:)` takes.
    public var path: String { "/run/netns/\(name)" }
    private var destroyed = false

    private init(name: String) { self.name = name }

    /// Creates `<prefix>-<6 random characters>`; the suffix keeps parallel tests apart.
    public static func create(_ prefix: String) throws -> TestNamespace {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let suffix = String((0..<6).map { _ in alphabet.randomElement()! })
        let name = "\(prefix)-\(suffix)"
        try runIP(["netns", "add", name])
        return TestNamespace(name: name)
    }

    /// `ip -n <name> <args>`: stdout, or throws `CommandFailed` with stderr.
    @discardableResult
    public func ip(_ args: String...) throws -> String {
        try Self.runIP(["-n", name] + args)
    }

    /// `ip netns exec <name> <args>`, whatever its exit status.
    public func exec(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try Self.run([Self.ipPath, "netns", "exec", name] + args)
    }

    /// Deletes the namespace; safe to call more than once.
    public func destroy() {
        guard !destroyed else { return }
        destroyed = true
        _ = try? Self.runIP(["netns", "del", name])
    }

    deinit { destroy() }

    /// Runs a program to completion, capturing stdout and stderr.
    public static func run(_ argv: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        // Drain stderr concurrently so a chatty command cannot block on a full pipe.
        // On a thread of its own, not a global queue: on Linux those share threads with the
        // cooperative pool, which blocked tests may already hold.
        let err = OffThread { errPipe.fileHandleForReading.readDataToEndOfFile() }
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        let errData = err.value(timeout: 86_400) ?? Data()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    @discardableResult
    private static func runIP(_ args: [String]) throws -> String {
        let argv = [ipPath] + args
        let r = try run(argv)
        guard r.status == 0 else { throw CommandFailed(command: argv, status: r.status, stderr: r.err) }
        return r.out
    }
}

/// Written by one reader thread, read after it finished (the DispatchGroup orders the two).
