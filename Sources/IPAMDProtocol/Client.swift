#if canImport(Glibc)
import Glibc
#endif

/// What the plugin needs from ipamd. A protocol so plugin logic is testable without a server.
public protocol IPAMDClient {
    /// One request and its answer; `timeoutSeconds` bounds connecting, sending and receiving each.
    func call(_ request: RPCRequest, timeoutSeconds: Int) throws(IPAMDClientError) -> RPCReply
    /// Sends the request and returns without waiting; `wait()` on the result reads the answer.
    /// The plugin does work that does not depend on the answer while ipamd handles it.
    func send(_ request: RPCRequest, timeoutSeconds: Int) -> PendingReply
}

extension IPAMDClient {
    /// Clients without a connection of their own (in-process fakes) answer at once.
    public func send(_ request: RPCRequest, timeoutSeconds: Int) -> PendingReply {
        let answer = Result { () throws(IPAMDClientError) -> RPCReply in try call(request, timeoutSeconds: timeoutSeconds) }
        return PendingReply { () throws(IPAMDClientError) -> RPCReply in try answer.get() }
    }
}

/// An answer on its way. `wait()` is called at most once.
public struct PendingReply {
    private let receive: () throws(IPAMDClientError) -> RPCReply

    public init(_ receive: @escaping () throws(IPAMDClientError) -> RPCReply) { self.receive = receive }

    public func wait() throws(IPAMDClientError) -> RPCReply { try receive() }
}

public enum IPAMDClientError: Error, Sendable, CustomStringConvertible {
    /// Nothing listens on the socket: ipamd is not running.
    case unreachable(path: String, SocketError)
    /// Connected, but the exchange broke (timeout, reset).
    case transport(SocketError)
    /// The answer was not a frame of our version, or not our JSON.
    case protocolError(String)

    public var description: String {
        switch self {
        case .unreachable(let p, let e): "ipamd is not reachable at \(p): \(e)"
        case .transport(let e): "ipamd connection failed: \(e)"
        case .protocolError(let m): "ipamd protocol error: \(m)"
        }
    }
}

/// One request per connection over the ipamd Unix socket.
public struct SocketIPAMDClient: IPAMDClient {
    public var path: String

    public init(path: String) { self.path = path }

    public func call(_ request: RPCRequest, timeoutSeconds: Int) throws(IPAMDClientError) -> RPCReply {
        try send(request, timeoutSeconds: timeoutSeconds).wait()
    }

    /// Connects and writes the request now; the answer is read (and the connection closed) by
    /// `wait()`. A failure to connect or send surfaces there too.
    public func send(_ request: RPCRequest, timeoutSeconds: Int) -> PendingReply {
        let s: UnixStream
        do { s = try UnixStream.connect(path: path, timeoutSeconds: timeoutSeconds) } catch {
            let failure: IPAMDClientError = error.isUnreachable ? .unreachable(path: path, error) : .transport(error)
            return PendingReply { () throws(IPAMDClientError) -> RPCReply in throw failure }
        }
        do { try s.writeAll(Framing.encode(Array(request.json.utf8))) } catch {
            s.close()
            return PendingReply { () throws(IPAMDClientError) -> RPCReply in throw .transport(error) }
        }
        return PendingReply { () throws(IPAMDClientError) -> RPCReply in try Self.receive(s) }
    }

    static func receive(_ s: UnixStream) throws(IPAMDClientError) -> RPCReply {
        defer { s.close() }
        do {
            switch try s.readFrame() {
            // ipamd went away mid-request (a restart): the request may be retried.
            case .eof: throw IPAMDClientError.transport(SocketError("recv: ipamd closed the connection without answering", errno: ECONNRESET))
            case .badMagic: throw IPAMDClientError.protocolError("answer is not an ipamd frame")
            case .tooLarge(let n): throw IPAMDClientError.protocolError("answer of \(n) bytes exceeds the limit")
            case .frame(let version, let payload):
                // A server of another version answers with its own version and an error payload.
                let reply: RPCReply
                do { reply = try Framing.decode(RPCReply.self, payload: payload) } catch {
                    throw IPAMDClientError.protocolError("ipamd speaks protocol version \(version), this plugin \(Framing.version); undecodable answer")
                }
                return reply
            }
        } catch let e as SocketError {
            throw .transport(e)
        } catch let e as IPAMDClientError {
            throw e
        } catch {
            throw .protocolError("\(error)")
        }
    }
}
