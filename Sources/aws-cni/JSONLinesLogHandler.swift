#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CNI
import IPAMDProtocol
import Logging

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
        var fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 && errno == ENOENT {
            // First run on a node: create the log directory (and parents) like the reference does.
            var dir = ""
            for part in path.split(separator: "/").dropLast() {
                dir += "/" + part
                mkdir(dir, 0o755)
            }
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        }
        // A log file we cannot open must not fail the pod: fall back to stderr.
        return fd >= 0 ? fd : 2
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
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, bytes.count) }
    }

    static func timestamp() -> String { Timestamp.rfc3339Now(fractionDigits: 3) }
}
