import Foundation
import Glibc
import SystemIO
import TestSupport

// Helpers for the binary-level tests (HostBinaryTests, KubernetesIpamdTests): ELF program
// headers read in Swift, a child with stdout on a chosen file (/dev/full), a child run on a
// thread of its own, ipamd's configuration-error lines, and log waits on several needles.

/// What the loader looks at in an ELF64 executable: its type and its program headers' types.
struct ELF64Image {
    static let ptLoad: UInt32 = 1
    static let ptDynamic: UInt32 = 2
    static let ptInterp: UInt32 = 3
    static let etExec: UInt16 = 2
    static let etDyn: UInt16 = 3

    var type: UInt16
    var machine: UInt16
    var programHeaderTypes: [UInt32]

    struct Malformed: Error, CustomStringConvertible { var description: String }

    /// Reads the ELF header and the program header table of `path` (little-endian ELF64 only).
    init(path: String) throws {
        let fd = try FileDescriptor.open(path: path, O_RDONLY | O_CLOEXEC)
        defer { fd.closeQuietly() }
        func read(_ count: Int, at offset: UInt64) throws -> [UInt8] {
            var buf = [UInt8](repeating: 0, count: count)
            let n = buf.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, count, off_t(offset)) }
            guard n == count else { throw Malformed(description: "\(path): short read of \(count) bytes at \(offset)") }
            return buf
        }
        let h = try read(64, at: 0)
        guard h[0..<4] == [0x7f, 0x45, 0x4c, 0x46] else { throw Malformed(description: "\(path): no ELF magic") }
        guard h[4] == 2 else { throw Malformed(description: "\(path): not ELFCLASS64 (class \(h[4]))") }
        guard h[5] == 1 else { throw Malformed(description: "\(path): not little-endian (data \(h[5]))") }
        func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
        func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
        func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }
        type = u16(h, 16)
        machine = u16(h, 18)
        let phoff = u64(h, 32), phentsize = Int(u16(h, 54)), phnum = Int(u16(h, 56))
        // 0xffff (PN_XNUM) would put the real count in section 0; no executable of ours has that many.
        guard phnum > 0, phnum < 0xffff, phentsize >= 56 else {
            throw Malformed(description: "\(path): \(phnum) program headers of \(phentsize) bytes")
        }
        let table = try read(phnum * phentsize, at: phoff)
        programHeaderTypes = (0..<phnum).map { u32(table, $0 * phentsize) }
    }

    var hasInterpreter: Bool { programHeaderTypes.contains(Self.ptInterp) }
    var hasDynamicSection: Bool { programHeaderTypes.contains(Self.ptDynamic) }
    var loadSegments: Int { programHeaderTypes.filter { $0 == Self.ptLoad }.count }
}

extension Spawn {
    /// Like `run`, with stdout on the file at `stdoutPath` (opened for writing, e.g. /dev/full);
    /// stderr is collected, `stdout` of the result is empty.
    static func run(_ argv: [String], env: [String: String], stdin: [UInt8] = [], netns: String? = nil,
                    stdoutPath: String) throws -> Completed {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inFD = try FileDescriptor.open(path: dir + "/in", O_RDWR | O_CREAT | O_TRUNC, mode: 0o600)
        try inFD.writeFully(stdin)
        _ = lseek(inFD.rawValue, 0, SEEK_SET)
        let outFD = try FileDescriptor.open(path: stdoutPath, O_WRONLY | O_CLOEXEC)
        let errFD = try FileDescriptor.open(path: dir + "/err", O_RDWR | O_CREAT | O_TRUNC, mode: 0o600)
        defer { inFD.closeQuietly(); outFD.closeQuietly(); errFD.closeQuietly() }
        let pid = try start(argv, env: env, netns: netns, stdinFD: inFD.rawValue, stdoutFD: outFD.rawValue, stderrFD: errFD.rawValue)
        let (code, sig) = wait(pid)
        return Completed(exitCode: code, signal: sig, stdout: [], stderr: try FileIO.read(path: dir + "/err"))
    }
}

/// A `Spawn.run` on a thread of its own, for a child the test must act on while it runs.
final class BackgroundRun: @unchecked Sendable {
    // @unchecked: `result` is guarded by `cond`.
    private let cond = NSCondition()
    private var result: Result<Completed, any Error>?
    let started = ContinuousClock.now
    private(set) var ended: ContinuousClock.Instant?

    init(_ argv: [String], env: [String: String], stdin: [UInt8], netns: String?) {
        Thread.detachNewThread { [self] in
            let r = Result { try Spawn.run(argv, env: env, stdin: stdin, netns: netns) }
            cond.lock(); result = r; ended = .now; cond.broadcast(); cond.unlock()
        }
    }

    /// The child's outcome and how long it ran, or nil if it had not ended by the deadline.
    func wait(timeout: Double) throws -> (Completed, Duration)? {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while result == nil { if !cond.wait(until: deadline) { return nil } }
        return (try result!.get(), ended! - started)
    }
}

extension RunningProcess {
    /// Waits until one line after the first `from` contains every one of `needles`.
    func waitForLine(containingAll needles: [String], from: Int = 0, timeout: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var scanned = from
        while true {
            let lines = output
            if lines.dropFirst(from).contains(where: { l in needles.allSatisfy { l.contains($0) } }) { return true }
            scanned = max(scanned, lines.count)
            let left = deadline.timeIntervalSinceNow
            // Something new that contains the first needle, or the end of the child / the deadline.
            guard left > 0, waitForLine(containing: needles[0], from: scanned, timeout: left) else {
                return output.dropFirst(from).contains(where: { l in needles.allSatisfy { l.contains($0) } })
            }
        }
    }
}

/// ipamd's configuration errors, one line each ("ipamd: invalid configuration: VAR: ..."): the
/// problems without the prefix, and every other non-empty line it printed.
func ipamdConfigProblems(_ output: String) -> (problems: [String], other: [String]) {
    let prefix = "ipamd: invalid configuration: "
    let lines = output.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    return (lines.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }, lines.filter { !$0.hasPrefix(prefix) })
}

/// A Unix socket file left behind as a crashed process leaves it: bound, then the socket closed.
func leaveStaleUnixSocket(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw Errno(rawValue: errno) }
    defer { close(fd) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw Errno(rawValue: ENAMETOOLONG) }
    withUnsafeMutableBytes(of: &addr.sun_path) { p in
        for (i, b) in bytes.enumerated() { p[i] = b }
    }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else { throw Errno(rawValue: errno) }
}

/// The file's type and permission bits (lstat), nil when it does not exist.
func fileMode(_ path: String) -> (isSocket: Bool, permissions: mode_t)? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return ((st.st_mode & S_IFMT) == S_IFSOCK, st.st_mode & 0o7777)
}

/// Every line of `text` parsed as a JSON object (nil when any line is not one).
func jsonLines(_ text: String) -> [[String: Any]]? {
    var out: [[String: Any]] = []
    for line in text.split(separator: "\n") where !line.isEmpty {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return nil }
        out.append(o)
    }
    return out
}

extension IpamdProcess {
    /// /v1/pods parsed, by pod name.
    func podsByName() throws -> [String: [String: Any]] {
        let r = try get("/v1/pods")
        guard r.status == 200, let list = r.json as? [[String: Any]] else { throw Errno.badMessage }
        var out: [String: [String: Any]] = [:]
        for p in list { out[p["name"] as? String ?? ""] = p }
        return out
    }
}

/// The first plugin of an installed conflist, as the runtime hands it to that plugin: the
/// plugin's own keys plus the list's cniVersion and name.
func firstPluginConf(ofConflist path: String) throws -> [String: Any] {
    let list = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
    guard var first = (list["plugins"] as? [[String: Any]])?.first else { throw Errno.badMessage }
    first["cniVersion"] = list["cniVersion"]
    first["name"] = list["name"]
    return first
}
