import Foundation
import IPAMDCore
import SystemIO

// Reading JSON documents in tests (nft -j output, conflists, expected files) as IPAMDCore's
// JSONValue, the value the checkpoint keeps foreign allocations as: one JSON value type in the
// project. Two documents compare structurally: object keys unordered, arrays in order.
extension JSONValue: CustomStringConvertible {
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) }
    public static func parse(file path: String) throws -> JSONValue { try parse(try FileIO.read(path: path)) }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int? {
        if case .number(let n) = self, n == n.rounded() { return Int(n) }
        return nil
    }

    public var arrayValue: [JSONValue] {
        if case .array(let a) = self { return a }
        return []
    }

    /// Every object without the key `key`, at any depth (nft's rule handles change every load).
    public func dropping(key: String) -> JSONValue {
        switch self {
        case .object(let o): .object(o.filter { $0.key != key }.mapValues { $0.dropping(key: key) })
        case .array(let a): .array(a.map { $0.dropping(key: key) })
        default: self
        }
    }

    /// Compact, keys sorted (what failure messages show).
    public var description: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : "\(n)"
        case .string(let s): "\"\(s)\""
        case .array(let a): "[" + a.map(\.description).joined(separator: ",") + "]"
        case .object(let o): "{" + o.keys.sorted().map { "\"\($0)\":\(o[$0]!)" }.joined(separator: ",") + "}"
        }
    }
}
