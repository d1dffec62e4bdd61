#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CNI
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

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        let ms = Int32(ts.tv_nsec / 1_000_000)
        return "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(pad(ms, 3))Z"
    }
}
