import Foundation
import Glibc
import TestSupport

/// A private containerd for a test (scripts/containerd/config.toml.in: its own root, state and
/// socket under `dir`, CRI off, the native snapshotter), and `ctr` talking to it.
final class Containerd {
    let dir: String
    let daemon: RunningProcess
    var socket: String { dir + "/containerd.sock" }

    /// Starts containerd and returns once it answers (bounded: 60 s).
    init(dir: String) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let template = try String(contentsOfFile: Binaries.root + "/scripts/containerd/config.toml.in", encoding: .utf8)
        try template.replacingOccurrences(of: "@DIR@", with: dir).write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
        daemon = try RunningProcess(["/usr/bin/containerd", "--config", dir + "/config.toml"], env: ["PATH": Self.path], netns: nil)
        let deadline = ContinuousClock.now + .seconds(60)
        while (try? ctr(["version"]).exitCode) != 0 {
            guard ContinuousClock.now < deadline, daemon.waitForExit(timeout: 0) == nil else {
                throw ContainerdError.notStarted(daemon.output.suffix(20).joined(separator: "\n"))
            }
            usleep(100_000)
        }
    }

    static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    var environment: [String: String] {
        ["CONTAINERD_ADDRESS": socket, "CONTAINERD_NAMESPACE": "default", "CONTAINERD_SNAPSHOTTER": "native", "PATH": Self.path]
    }

    /// `ctr ARGS` to completion (in `netns` when given: ctr itself execs the CNI plugins there).
    @discardableResult
    func ctr(_ args: [String], netns: String? = nil) throws -> Completed {
        try Spawn.run(["/usr/bin/ctr"] + args, env: environment, netns: netns)
    }

    /// A `ctr` that keeps running (a `ctr run --rm` whose container lives until released).
    func ctrProcess(_ args: [String], netns: String? = nil) throws -> RunningProcess {
        try RunningProcess(["/usr/bin/ctr"] + args, env: environment, netns: netns)
    }

    /// Imports an OCI archive; returns the image name its index gives.
    func importImage(_ tarball: String) throws -> String {
        let r = try ctr(["images", "import", "--snapshotter", "native", tarball])
        guard r.exitCode == 0 else { throw ContainerdError.command("import \(tarball): \(r)") }
        // "unpacking NAME (sha256:...)...done"
        guard let line = r.out.split(separator: "\n").first(where: { $0.hasPrefix("unpacking ") }),
              let name = line.split(separator: " ").dropFirst().first else { throw ContainerdError.command("import \(tarball): no image named in \(r.out)") }
        return String(name)
    }

    /// The PID of a running task (nil: none).
    func taskPID(_ id: String) throws -> pid_t? {
        let r = try ctr(["tasks", "ls"])
        for line in r.out.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 3, f[0] == id, f[2] == "RUNNING" { return pid_t(f[1]) }
        }
        return nil
    }

    /// SIGTERM to a task, waits for it (bounded), then removes task and container.
    func remove(_ id: String, timeout: Double = 30) throws {
        try ctr(["tasks", "kill", "-s", "SIGTERM", id])
        let deadline = ContinuousClock.now + .seconds(timeout)
        while try taskPID(id) != nil, ContinuousClock.now < deadline { usleep(50_000) }
        try ctr(["tasks", "rm", "-f", id])
        try ctr(["containers", "rm", id])
    }

    /// Removes what a test left (tasks, containers), stops containerd, unmounts below `dir`.
    func stop() {
        if let tasks = try? ctr(["tasks", "ls", "-q"]) {
            for id in tasks.out.split(separator: "\n") {
                _ = try? ctr(["tasks", "kill", "-s", "SIGKILL", String(id)])
                _ = try? ctr(["tasks", "rm", "-f", String(id)])
            }
        }
        if let containers = try? ctr(["containers", "ls", "-q"]) {
            for id in containers.out.split(separator: "\n") { _ = try? ctr(["containers", "rm", String(id)]) }
        }
        daemon.signal(SIGTERM)
        if daemon.waitForExit(timeout: 20) == nil {
            daemon.signal(SIGKILL)
            _ = daemon.waitForExit(timeout: 10)
        }
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        for target in mounts.split(separator: "\n").compactMap({ $0.split(separator: " ").dropFirst().first.map(String.init) })
            .filter({ $0.hasPrefix(dir + "/") }).sorted(by: >) {
            umount2(target, Int32(MNT_DETACH))
        }
    }
}

enum ContainerdError: Error { case notStarted(String), command(String) }
