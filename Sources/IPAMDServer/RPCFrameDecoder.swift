import IPAMDProtocol
import NIOCore

/// One thing read from an RPC connection.
enum RPCInbound: Sendable {
    case frame(version: UInt16, payload: [UInt8])
    /// Not the ipamd protocol: the stream position is lost, the connection ends after the reply.
    case badMagic
    /// A frame larger than `Framing.maxPayload`: refused before reading it.
    case tooLarge(Int)
}

/// Splits the byte stream into frames (Framing's 12-byte header + payload). After a frame that
/// cannot be delimited it passes nothing more: the server answers and closes.
struct RPCFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RPCInbound
    private var broken = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if broken {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        // A stray client (an HTTP request on the wrong socket) is told at its first 4 bytes.
        let prefix = min(buffer.readableBytes, Framing.headerSize)
        guard let start = buffer.getBytes(at: buffer.readerIndex, length: prefix) else { return .needMoreData }
        if !zip(start.prefix(4), Framing.magic).allSatisfy({ $0 == $1 }) { return refuse(.badMagic, context, &buffer) }
        guard prefix == Framing.headerSize else { return .needMoreData }
        switch Framing.parseHeader(start) {
        case .badMagic: return refuse(.badMagic, context, &buffer)
        case .tooLarge(let n): return refuse(.tooLarge(n), context, &buffer)
        case .valid(let version, let length):
            guard buffer.readableBytes >= Framing.headerSize + length else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: Framing.headerSize)
            let payload = buffer.readBytes(length: length) ?? []
            context.fireChannelRead(wrapInboundOut(.frame(version: version, payload: payload)))
            return .continue
        }
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at EOF: the client gave up mid-request; nothing to answer.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }

    private mutating func refuse(_ what: RPCInbound, _ context: ChannelHandlerContext, _ buffer: inout ByteBuffer) -> DecodingState {
        broken = true
        buffer.moveReaderIndex(to: buffer.writerIndex)
        context.fireChannelRead(wrapInboundOut(what))
        return .needMoreData
    }
}
