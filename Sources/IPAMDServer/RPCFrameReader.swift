import IPAMDProtocol
import NIOCore

/// One thing read from an RPC connection.
enum RPCInbound: Sendable, Equatable {
    case frame(version: UInt16, payload: ByteBuffer)
    /// Not the ipamd protocol: the stream position is lost, the connection ends after the reply.
    case badMagic
    /// A frame larger than `Framing.maxPayload`: refused before reading it.
    case tooLarge(Int)
}

/// Splits a connection's bytes into frames (Framing's 12-byte header + payload). After a frame
/// that cannot be delimited it yields nothing more: the server answers and closes.
struct RPCFrameReader {
    private var broken = false

    /// The next thing in `buffer` (consumed from it), or nil until more bytes arrive.
    mutating func next(_ buffer: inout ByteBuffer) -> RPCInbound? {
        if broken {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
        // A stray client (an HTTP request on the wrong socket) is told at its first 4 bytes.
        let prefix = min(buffer.readableBytes, Framing.headerSize)
        let magicSoFar = buffer.withUnsafeReadableBytes { bytes in
            zip(bytes.prefix(4), Framing.magic).allSatisfy { $0 == $1 }
        }
        guard magicSoFar else { return refuse(.badMagic, &buffer) }
        guard prefix == Framing.headerSize, let header = buffer.getBytes(at: buffer.readerIndex, length: prefix) else { return nil }
        switch Framing.parseHeader(header) {
        case .badMagic: return refuse(.badMagic, &buffer)
        case .tooLarge(let n): return refuse(.tooLarge(n), &buffer)
        case .valid(let version, let length):
            guard buffer.readableBytes >= Framing.headerSize + length else { return nil }
            buffer.moveReaderIndex(forwardBy: Framing.headerSize)
            return .frame(version: version, payload: buffer.readSlice(length: length)!)
        }
    }

    private mutating func refuse(_ what: RPCInbound, _ buffer: inout ByteBuffer) -> RPCInbound {
        broken = true
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return what
    }
}
