#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CNI
import IPAMDProtocol
import Logging
import SystemIO

/// One JSON object per line, appended to the plugin log file (or stderr). Never stdout: stdout
/// carries the CNI result. Each write is a single write(2) on an O_APPEND fd, so lines from
/// concurrent plugin processes do not interleave.
struct JSONLinesLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let fd: Int32
    let label: String

    init(label: String, path: String, level: Logger.Level) {
        self.label = label
        logLevel = level
        fd = path == "stderr" ? 2 : Self.openAppend(path)
    }

    static func openAppend(_ path: String) -> Int32 {
        func open() throws(Errno) -> FileDescriptor { try FileDescriptor.open(path: path, O_WRONLY | O_APPEND | O_CREAT) }
        do { return try open().rawValue } catch where error == .noSuchFileOrDirectory {
            // First run on a node: create the log directory (and parents) like the reference does.
            var dir = ""
            for part in path.split(separator: "/").dropLast() {
                dir += "/" + part
                mkdir(dir, 0o755)
            }
        } catch {}
        // A log file we cannot open must not fail the pod: fall back to stderr.
        return (try? open().rawValue) ?? 2
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = ["level": event.level.rawValue, "msg": event.message.description, "logger": label, "ts": Self.timestamp()]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, b in b }) { fields[k] = "\(v)" }
        if let e = event.error { fields["error"] = "\(e)" }
        let text = CNIJSON.encode(fields) + "\n"
        // Best effort: a full disk must not fail the pod's network.
        try? FileDescriptor(rawValue: fd).writeFully(Array(text.utf8))
    }

    static func timestamp() -> String { Timestamp.rfc3339Now(fractionDigits: 3) }
}
