/// JSON text written directly, for the few documents the plugin writes on every run (its
/// result, VERSION, log lines, the ipamd request). Foundation's encoder instantiates its
/// generic machinery in each short-lived process, and the runtime's type and conformance
/// lookups behind that were the largest single cost of an ADD after exec. Output matches the
/// encoder with sorted keys and unescaped slashes; tests hold the two side by side.
public enum JSONText {
    /// `s` as a JSON string literal: quote, backslash and control characters escaped.
    public static func string(_ s: String) -> String {
        // Most values (addresses, names, ids) need no escaping: one pass over the bytes.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5c }) { return "\"" + s + "\"" }
        var out = "\""
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
                out += "\\u00"
                out.append(hexDigits[Int(u.value >> 4)])
                out.append(hexDigits[Int(u.value & 15)])
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// An array of values that are JSON text already.
    public static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }

    public static func array(strings: [String]) -> String { array(strings.map(string)) }

    static let hexDigits = Array("0123456789abcdef")
}

/// An object whose members are added in any order and written with sorted keys; nil values are
/// left out, as the encoder leaves out nil optionals.
public struct JSONObject {
    private var members: [(key: String, json: String)] = []

    public init() {}

    public mutating func add(_ key: String, _ value: String?) { if let value { members.append((key, JSONText.string(value))) } }
    public mutating func add(_ key: String, _ value: Int?) { if let value { members.append((key, String(value))) } }
    public mutating func add(_ key: String, _ value: Bool?) { if let value { members.append((key, value ? "true" : "false")) } }
    public mutating func add(_ key: String, strings: [String]?) { if let strings { members.append((key, JSONText.array(strings: strings))) } }
    /// A value that is JSON text already (a nested object or array).
    public mutating func add(_ key: String, json: String?) { if let json { members.append((key, json)) } }

    public var text: String {
        var out = "{"
        out.reserveCapacity(members.reduce(2) { $0 + $1.key.utf8.count + $1.json.utf8.count + 4 })
        for (i, m) in members.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { out += "," }
            out += JSONText.string(m.key)
            out += ":"
            out += m.json
        }
        out += "}"
        return out
    }
}
