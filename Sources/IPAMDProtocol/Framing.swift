import FoundationEssentials

/// Frame = 12-byte header + JSON payload.
///   0..<4  magic "SGPD" (a stray client or a byte-stream mixup is detected at once)
///   4..<6  protocol version, big endian
///   6..<8  reserved, zero
///   8..<12 payload length, big endian (at most `maxPayload`)
/// The version sits in the header, not the JSON, so a peer of another version gets a clear
/// error even if the payload schema changed completely.
public enum Framing {
    public static let magic: [UInt8] = Array("SGPD".utf8)
    public static let version: UInt16 = 1
    public static let headerSize = 12
    public static let maxPayload = 1 << 20

    public enum Header: Equatable, Sendable {
        case valid(version: UInt16, length: Int)
        case badMagic
        case tooLarge(Int)
    }

    public static func encode(_ payload: [UInt8], version: UInt16 = Framing.version) -> [UInt8] {
        header(payloadLength: payload.count, version: version) + payload
    }

    /// The 12 bytes before a payload of `payloadLength` bytes.
    public static func header(payloadLength: Int, version: UInt16 = Framing.version) -> [UInt8] {
        let n = UInt32(payloadLength)
        return magic + [UInt8(version >> 8), UInt8(version & 0xff), 0, 0,
                        UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
    }

    public static func encode<T: Encodable>(message: T, version: UInt16 = Framing.version) -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = (try? enc.encode(message)) ?? Data()
        return encode(Array(data), version: version)
    }

    /// Parses the first 12 bytes of `h`.
    public static func parseHeader(_ h: [UInt8]) -> Header {
        guard h.count >= headerSize, Array(h[0..<4]) == magic else { return .badMagic }
        let version = UInt16(h[4]) << 8 | UInt16(h[5])
        let length = Int(h[8]) << 24 | Int(h[9]) << 16 | Int(h[10]) << 8 | Int(h[11])
        guard length <= maxPayload else { return .tooLarge(length) }
        return .valid(version: version, length: length)
    }

    public static func decode<T: Decodable>(_ type: T.Type, payload: some Sequence<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(payload))
    }
}
