// Address value types with no Foundation dependency, so the CNI binary stays lean.

public enum AddressFamily: Int32, Sendable, Hashable, Codable {
    case ipv4 = 2   // AF_INET
    case ipv6 = 10  // AF_INET6
}

public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Host byte order, so arithmetic (network + 1) is plain integer arithmetic.
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            // Leading zeros are rejected: "010" is octal to some parsers and decimal to others.
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(p.count > 1 && p.first == "0"), let octet = UInt8(p) else { return nil }
            v = v << 8 | UInt32(octet)
        }
        value = v
    }

    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    public var description: String { bytes.map { String($0) }.joined(separator: ".") }

    public static func < (l: Self, r: Self) -> Bool { l.value < r.value }
}

public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]  // always 16

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public init?(_ text: some StringProtocol) {
        let s = String(text)
        guard !s.isEmpty, s.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        var groups: [UInt16] = []
        var tailGroups: [UInt16] = []
        let halves = s.components(separatedByString: "::")
        guard halves.count <= 2 else { return nil }
        func parse(_ part: String, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if allowV4Tail, i == fields.count - 1, f.contains(".") {
                    guard let v4 = IPv4Address(f) else { return nil }
                    out.append(UInt16(v4.value >> 16)); out.append(UInt16(v4.value & 0xffff))
                    continue
                }
                guard !f.isEmpty, f.count <= 4, let g = UInt16(f, radix: 16) else { return nil }
                out.append(g)
            }
            return out
        }
        if halves.count == 2 {
            guard let head = parse(halves[0], allowV4Tail: false),
                  let tail = parse(halves[1], allowV4Tail: true),
                  head.count + tail.count <= 7 else { return nil }
            groups = head; tailGroups = tail
            groups += Array(repeating: 0, count: 8 - head.count - tail.count) + tailGroups
        } else {
            guard let all = parse(halves[0], allowV4Tail: true), all.count == 8 else { return nil }
            groups = all
        }
        bytes = groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// RFC 5952 text: lowercase, longest run (>= 2) of zero groups compressed.
    public var description: String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }
}

public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init?(_ text: some StringProtocol) {
        if let a = IPv4Address(text) { self = .v4(a) } else if let a = IPv6Address(text) { self = .v6(a) } else { return nil }
    }

    public var family: AddressFamily {
        switch self { case .v4: .ipv4; case .v6: .ipv6 }
    }

    public var bytes: [UInt8] {
        switch self { case .v4(let a): a.bytes; case .v6(let a): a.bytes }
    }

    public var maxPrefixLength: UInt8 { family == .ipv4 ? 32 : 128 }

    public var description: String {
        switch self { case .v4(let a): a.description; case .v6(let a): a.description }
    }

    public init?(family: AddressFamily, bytes: [UInt8]) {
        switch family {
        case .ipv4:
            guard bytes.count == 4 else { return nil }
            self = .v4(IPv4Address(bytes[0], bytes[1], bytes[2], bytes[3]))
        case .ipv6:
            guard let a = IPv6Address(bytes: bytes) else { return nil }
            self = .v6(a)
        }
    }
}

/// An address with a prefix length, e.g. 10.0.32.0/19 or 10.0.40.12/32.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var length: UInt8

    public init?(address: IPAddress, length: UInt8) {
        guard length <= address.maxPrefixLength else { return nil }
        self.address = address
        self.length = length
    }

    /// A host prefix (/32 or /128).
    public init(host: IPAddress) {
        address = host
        length = host.maxPrefixLength
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPAddress(parts[0]),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let l = UInt8(parts[1]) else { return nil }
        self.init(address: a, length: l)
    }

    public var family: AddressFamily { address.family }
    /// A single address: /32 (IPv4) or /128 (IPv6).
    public var isHost: Bool { length == address.maxPrefixLength }

    /// The prefix with host bits cleared.
    public var network: IPPrefix {
        var b = address.bytes
        for i in 0..<b.count {
            let bitsBefore = i * 8
            if bitsBefore >= Int(length) { b[i] = 0 } else if bitsBefore + 8 > Int(length) {
                b[i] &= UInt8(0xff << (8 - (Int(length) - bitsBefore)) & 0xff)
            }
        }
        return IPPrefix(address: IPAddress(family: family, bytes: b)!, length: length)!
    }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.family == family else { return false }
        return IPPrefix(address: a, length: length)!.network.address == network.address
    }

    public var description: String { "\(address)/\(length)" }
}

public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]  // always 6

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var b: [UInt8] = []
        for p in parts {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        bytes = b
    }

    /// Not multicast/broadcast (low bit of the first octet clear) and not all zeros.
    public var isUnicast: Bool { bytes[0] & 1 == 0 && bytes != [0, 0, 0, 0, 0, 0] }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}

extension String {
    /// Split on a multi-character separator without Foundation.
    func components(separatedByString sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}

// Codable as their text form, which is how every wire format here carries them.
extension IPv4Address: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = IPv4Address(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an IPv4 address: \(s)"))
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

extension IPAddress: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = IPAddress(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an IP address: \(s)"))
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

extension IPPrefix: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = IPPrefix(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a CIDR: \(s)"))
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}

extension MACAddress: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = MACAddress(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a MAC address: \(s)"))
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(description) }
}
