import IPAMDProtocol
import Logging

/// Serves the framed RPC protocol on a connection until the client closes it. Bad input gets
/// an error frame; a frame that cannot be delimited (bad magic, oversized) also ends the
/// connection, since the stream position is lost. The server itself keeps serving.
public struct RPCConnectionHandler: Sendable {
    let handler: RPCHandler
    let logger: Logger

    public init(handler: RPCHandler, logger: Logger) { self.handler = handler; self.logger = logger }

    public func serve(_ s: UnixStream) {
        s.setTimeout(seconds: 30)
        do {
            while true {
                switch try s.readFrame() {
                case .eof:
                    return
                case .badMagic:
                    logger.warning("rejected a connection that does not speak the ipamd protocol")
                    try s.writeAll(Framing.encode(message: RPCReply(error: RPCFailure(.badRequest, "not an ipamd RPC frame (bad magic); expected protocol version \(Framing.version)"))))
                    return
                case .tooLarge(let n):
                    try s.writeAll(Framing.encode(message: RPCReply(error: RPCFailure(.badRequest, "frame of \(n) bytes exceeds \(Framing.maxPayload)"))))
                    return
                case .frame(let version, let payload):
                    guard version == Framing.version else {
                        logger.warning("client speaks another protocol version", metadata: ["client_version": "\(version)"])
                        try s.writeAll(Framing.encode(message: RPCReply(error: RPCFailure(.unsupportedVersion,
                            "client speaks ipamd protocol version \(version); this ipamd speaks version \(Framing.version)"))))
                        continue
                    }
                    let reply: RPCReply
                    do {
                        reply = handler.handle(try Framing.decode(RPCRequest.self, payload: payload))
                    } catch {
                        reply = RPCReply(error: RPCFailure(.badRequest, "malformed request: \(error)"))
                    }
                    try s.writeAll(Framing.encode(message: reply))
                }
            }
        } catch {
            logger.debug("RPC connection ended", metadata: ["error": "\(error)"])
        }
    }
}
