import FoundationEssentials

/// One place for JSON encoding choices: stable key order (diffable output, golden tests) and
/// no escaped slashes (paths read naturally in results and logs).
public enum CNIJSON {
    public static func encode<T: Encodable>(_ value: T) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own value types cannot fail.
        let data = (try? enc.encode(value)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A flat object of strings, as `encode` writes it (keys sorted, the same escapes), without
    /// going through the encoder: for log lines, where the encoder's generic machinery cost more
    /// than everything else a line does (measured in the VM: 15 ms of a 90 ms ADD at Debug).
    public static func object(_ fields: [String: String]) -> String {
        var out = "{"
        for (i, key) in fields.keys.sorted().enumerated() {
            if i > 0 { out += "," }
            appendString(key, to: &out)
            out += ":"
            appendString(fields[key]!, to: &out)
        }
        return out + "}"
    }

    /// `s` as a JSON string literal, escaped as the encoder escapes.
    public static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u.value {
            case 0x22: out += "\\\""
            case 0x5c: out += "\\\\"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0c: out += "\\f"
            case 0..<0x20:
                let hex = Array("0123456789abcdef")
                out += "\\u00"
                out.append(hex[Int(u.value >> 4)])
                out.append(hex[Int(u.value & 15)])
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    /// Decode failures as one readable line, e.g. `mtu: expected a string` rather than a dump.
    public static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ ctx: DecodingError.Context) -> String {
            let p = ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : "\(p): "
        }
        switch e {
        case .typeMismatch(let t, let ctx): return "\(path(ctx))expected \(t)"
        case .valueNotFound(let t, let ctx): return "\(path(ctx))missing \(t) value"
        case .keyNotFound(let k, let ctx): return "\(path(ctx))missing key \"\(k.stringValue)\""
        case .dataCorrupted(let ctx):
            let under = ctx.underlyingError.map { " (\($0))" } ?? ""
            return "\(path(ctx))\(ctx.debugDescription)\(under)"
        @unknown default: return "\(e)"
        }
    }
}
