#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 UTC timestamps from the realtime clock, formatted by hand: Foundation's
/// ISO8601DateFormatter goes through ICU and cost ipamd a third of each AddNetwork.
public enum Timestamp {
    /// "2026-11-22T07:38:54.123Z" (`fractionDigits` 0...9).
    public static func rfc3339Now(fractionDigits: Int = 3) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var t = tm()
        gmtime_r(&seconds, &t)
        var out = ""
        out.reserveCapacity(30)
        func append(_ v: Int, width: Int) {
            let digits = String(v)
            if digits.count < width { out += String(repeating: "0", count: width - digits.count) }
            out += digits
        }
        append(Int(t.tm_year) + 1900, width: 4); out += "-"
        append(Int(t.tm_mon) + 1, width: 2); out += "-"
        append(Int(t.tm_mday), width: 2); out += "T"
        append(Int(t.tm_hour), width: 2); out += ":"
        append(Int(t.tm_min), width: 2); out += ":"
        append(Int(t.tm_sec), width: 2)
        let digits = min(max(fractionDigits, 0), 9)
        if digits > 0 {
            var fraction = Int(ts.tv_nsec)
            for _ in digits..<9 { fraction /= 10 }
            out += "."
            append(fraction, width: digits)
        }
        return out + "Z"
    }
}
