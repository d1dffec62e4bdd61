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
        return rfc3339(seconds: ts.tv_sec, nanoseconds: Int(ts.tv_nsec), fractionDigits: fractionDigits)
    }

    /// The checkpoint's allocation timestamps (Unix nanoseconds, as the reference writes them).
    public static func rfc3339(unixNanoseconds n: Int64, fractionDigits: Int = 3) -> String {
        rfc3339(seconds: Int(n / 1_000_000_000), nanoseconds: Int(n % 1_000_000_000), fractionDigits: fractionDigits)
    }

    /// Unix nanoseconds of "YYYY-MM-DDTHH:MM:SS[.fraction]Z"; nil for anything else.
    public static func unixNanoseconds(rfc3339 text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z") else { return nil }
        func number(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r { guard (48...57).contains(u[i]) else { return nil }; v = v * 10 + Int(u[i] - 48) }
            return v
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10), let h = number(11..<13),
              let mi = number(14..<16), let sec = number(17..<19) else { return nil }
        var nanos = 0
        if u[19] == UInt8(ascii: ".") {
            let digits = u.count - 21
            guard digits >= 1, digits <= 9, let f = number(20..<(u.count - 1)) else { return nil }
            nanos = f
            for _ in digits..<9 { nanos *= 10 }
        }
        var t = tm()
        t.tm_year = Int32(y - 1900); t.tm_mon = Int32(mo - 1); t.tm_mday = Int32(d)
        t.tm_hour = Int32(h); t.tm_min = Int32(mi); t.tm_sec = Int32(sec)
        return Int64(timegm(&t)) * 1_000_000_000 + Int64(nanos)
    }

    static func rfc3339(seconds: Int, nanoseconds: Int, fractionDigits: Int) -> String {
        var seconds = seconds
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
            var fraction = nanoseconds
            for _ in digits..<9 { fraction /= 10 }
            out += "."
            append(fraction, width: digits)
        }
        return out + "Z"
    }
}
