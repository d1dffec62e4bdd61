import CNIPlugin
import Glibc
import IPAMDProtocol
@_exported import TestSupport

/// ipamd stand-in: answers from a fixed table or fails like a dead socket.
final class FakeIPAMD: IPAMDClient {
    var network: PodNetwork?
    var failure: RPCFailure?
    var down = false
    var requests: [RPCRequest] = []

    init(network: PodNetwork? = nil) { self.network = network }

    func call(_ request: RPCRequest, timeoutSeconds: Int) throws(IPAMDClientError) -> RPCReply {
        requests.append(request)
        if down { throw .unreachable(path: "/fake.sock", SocketError("connect", errno: ECONNREFUSED)) }
        if let failure { return RPCReply(error: failure) }
        return RPCReply(network: network)
    }
}
