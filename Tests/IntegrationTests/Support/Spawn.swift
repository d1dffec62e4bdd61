import Foundation
import Glibc
import Synchronization
import SystemIO
import TestSupport
import TestSupportShim

/// Runs `body` with the calling thread in the network namespace at `path` (and back after).
/// Only this thread switches, and nothing in `body` may suspend: a process spawned here, or a
/// /proc/sys/net file opened here, belongs to that namespace.
func inNetns<T>(_ path: String?, _ body: () throws -> T) throws -> T {
    guard let path else { return try body() }
    let target = open(path, O_RDONLY | O_CLOEXEC)
    guard target >= 0 else { throw Errno(rawValue: errno) }
    defer { close(target) }
    let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
    guard original >= 0 else { throw Errno(rawValue: errno) }
    defer { close(original) }
    let rc = testshim_enter_netns(target)
    guard rc == 0 else { throw Errno(rawValue: -rc) }
    defer { precondition(testshim_enter_netns(original) == 0, "cannot return to the original network namespace") }
    return try body()
}

/// How a child ended.
struct Completed: CustomStringConvertible {
    var exitCode: Int32?
    var signal: Int32?
    var stdout: [UInt8]
    var stderr: [UInt8]
    /// From spawn to reaped (benchmarks time this alone, without the files around it).
    var elapsed: Duration = .zero

    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(stdout))) as? [String: Any] }
    /// The CNI error code, when stdout is a CNI error.
    var cniCode: Int? { json?["code"] as? Int }
    var description: String { "exit \(exitCode.map(String.init) ?? "-") signal \(signal.map(String.init) ?? "-") stdout \(out) stderr \(err.suffix(400))" }
}

/// Child processes without a shell: posix_spawn in a chosen network namespace, environment
/// given whole (nothing inherited), stdio on files so no pipe can fill up.
enum Spawn {
    static func cStrings(_ list: [String]) -> [UnsafeMutablePointer<CChar>?] { list.map { strdup($0) } + [nil] }

    /// Starts `argv` with `env` in `netns`; stdin from `stdin`, stdout/stderr to the given fds.
    static func start(_ argv: [String], env: [String: String], netns: String?, stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinFD, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
        // Nothing else: a pipe another thread is reading to EOF at this moment (an `ip` run's
        // stdout) must not stay open in a long-lived child such as ipamd, or that read never ends.
        precondition(testshim_spawn_close_from(&actions, 3) == 0)
        let args = cStrings(argv), envp = cStrings(env.map { "\($0.key)=\($0.value)" })
        defer { for p in args + envp { free(p) } }
        var pid: pid_t = 0
        let rc = try inNetns(netns) { posix_spawn(&pid, argv[0], &actions, nil, args, envp) }
        guard rc == 0 else { throw Errno(rawValue: rc) }
        return pid
    }

    /// Waits for `pid` (EINTR retried).
    static func wait(_ pid: pid_t) -> (exitCode: Int32?, signal: Int32?) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let sig = status & 0x7f
        return sig == 0 ? ((status >> 8) & 0xff, nil) : (nil, sig)
    }

    /// Runs to completion: stdin given, stdout and stderr collected.
    static func run(_ argv: [String], env: [String: String], stdin: [UInt8] = [], netns: String? = nil) throws -> Completed {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inFD = try FileDescriptor.open(path: dir + "/in", O_RDWR | O_CREAT | O_TRUNC, mode: 0o600)
        try inFD.writeFully(stdin)
        _ = lseek(inFD.rawValue, 0, SEEK_SET)
        let outFD = try FileDescriptor.open(path: dir + "/out", O_RDWR | O_CREAT | O_TRUNC, mode: 0o600)
        let errFD = try FileDescriptor.open(path: dir + "/err", O_RDWR | O_CREAT | O_TRUNC, mode: 0o600)
        defer { inFD.closeQuietly(); outFD.closeQuietly(); errFD.closeQuietly() }
        let started = ContinuousClock.now
        let pid = try start(argv, env: env, netns: netns, stdinFD: inFD.rawValue, stdoutFD: outFD.rawValue, stderrFD: errFD.rawValue)
        let (code, sig) = wait(pid)
        let elapsed = ContinuousClock.now - started
        return Completed(exitCode: code, signal: sig, stdout: try FileIO.read(path: dir + "/out"), stderr: try FileIO.read(path: dir + "/err"),
                         elapsed: elapsed)
    }
}

/// A long-running child whose stderr is read line by line as it comes (ipamd logs there), so a
/// test waits for what the child says instead of sleeping.
final class RunningProcess: @unchecked Sendable {
    // @unchecked: `lines` and `ended` are guarded by `cond`.
    let pid: pid_t
    private let cond = NSCondition()
    private var lines: [String] = []
    private var ended: (exitCode: Int32?, signal: Int32?)?

    init(_ argv: [String], env: [String: String], netns: String?) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Errno(rawValue: errno) }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        pid = try Spawn.start(argv, env: env, netns: netns, stdinFD: devnull, stdoutFD: fds[1], stderrFD: fds[1])
        let readFD = fds[0]
        Thread.detachNewThread { [self] in
            var pending: [UInt8] = []
            let fd = FileDescriptor(rawValue: readFD)
            while let chunk = try? fd.readSome(max: 65536), !chunk.isEmpty {
                pending += chunk
                var new: [String] = []
                while let nl = pending.firstIndex(of: 10) {
                    new.append(String(decoding: pending[..<nl], as: UTF8.self))
                    pending.removeFirst(nl + 1)
                }
                cond.lock(); lines += new; cond.broadcast(); cond.unlock()
            }
            fd.closeQuietly()
            let status = Spawn.wait(pid)
            cond.lock(); ended = status; cond.broadcast(); cond.unlock()
        }
    }

    /// Everything the child printed so far.
    var output: [String] { cond.lock(); defer { cond.unlock() }; return lines }

    /// Waits until a line after the first `from` contains `text` (true), or the child ended or
    /// the deadline passed (false).
    func waitForLine(containing text: String, from: Int = 0, timeout: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while true {
            if lines.dropFirst(from).contains(where: { $0.contains(text) }) { return true }
            if ended != nil { return false }
            if !cond.wait(until: deadline) { return false }
        }
    }

    /// Waits for the child to end (it was signalled or exits on its own).
    func waitForExit(timeout: Double = 60) -> (exitCode: Int32?, signal: Int32?)? {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while ended == nil { if !cond.wait(until: deadline) { return nil } }
        return ended
    }

    func signal(_ s: Int32) { kill(pid, s) }
}
