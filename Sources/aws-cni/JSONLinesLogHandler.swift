#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CNI
import IPAMDProtocol
import Logging
import SystemIO

/// Where this run's log lines go: the plugin log file (or stderr), never stdout, which carries
/// the CNI result. Lines are kept in memory and written once, by `flush()` at exit, as one
/// write(2) on an O_APPEND fd: one syscall per run instead of one per line, and runs of
/// concurrent plugin processes never interleave. The file is opened at that flush too, so a run
/// that logs nothing (VERSION) never touches it. A run killed before exit loses its lines; the
/// runtime still sees it fail.
final class LogSink: @unchecked Sendable {
    // @unchecked: aws-cni is single-threaded; nothing logs from another thread.
    private let path: String
    private var pending: [UInt8] = []

    init(path: String) { self.path = path }

    func append(_ line: String) { pending.append(contentsOf: line.utf8) }

    /// Best effort: a full disk or an unwritable log must not fail the pod's network.
    func flush() {
        guard !pending.isEmpty else { return }
        let fd = path == "stderr" ? FileDescriptor.standardError : Self.openAppend(path)
        try? fd.writeFully(pending)
        pending.removeAll()
        if fd != FileDescriptor.standardError { fd.closeQuietly() }
    }

    static func openAppend(_ path: String) -> FileDescriptor {
        func open() throws(Errno) -> FileDescriptor { try FileDescriptor.open(path: path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC) }
        do { return try open() } catch where error == .noSuchFileOrDirectory {
            // First run on a node: create the log directory (and parents) like the reference does.
            var dir = ""
            for part in path.split(separator: "/").dropLast() {
                dir += "/" + part
                mkdir(dir, 0o755)
            }
        } catch {}
        // A log file we cannot open must not fail the pod: fall back to stderr.
        return (try? open()) ?? FileDescriptor.standardError
    }
}

/// One JSON object per line, into a `LogSink`.
struct JSONLinesLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let sink: LogSink
    let label: String

    init(label: String, sink: LogSink, level: Logger.Level) {
        self.label = label
        self.sink = sink
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = ["level": event.level.rawValue, "msg": event.message.description, "logger": label,
                                        "ts": Timestamp.rfc3339Now(fractionDigits: 3)]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, b in b }) { fields[k] = "\(v)" }
        if let e = event.error { fields["error"] = "\(e)" }
        sink.append(CNIJSON.object(fields) + "\n")
    }
}
