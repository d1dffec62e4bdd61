import FoundationEssentials
import JSONText

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

    /// A flat object of strings, as `encode` writes it, without the encoder (log lines).
    public static func object(_ fields: [String: String]) -> String {
        var o = JSONObject()
        for (k, v) in fields { o.add(k, v) }
        return o.text
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
