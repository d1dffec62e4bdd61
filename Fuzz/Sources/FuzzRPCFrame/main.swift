// An ipamd RPC frame as read from the unix socket: 12-byte header, then the JSON payload, which
// is decoded both as a request (ipamd's side) and as a reply (aws-cni's side).
import FuzzDriver
import IPAMDProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let header = Array(bytes.prefix(Framing.headerSize))
    let payload = Array(bytes.dropFirst(Framing.headerSize))
    switch Framing.parseHeader(header) {
    case .valid(let version, let length):
        _ = (version, length)
    case .badMagic, .tooLarge:
        break
    }
    _ = try? Framing.decode(RPCRequest.self, payload: payload)
    if let reply = try? Framing.decode(RPCReply.self, payload: payload), let e = reply.error { _ = e.description }
    return 0
}

// The entry point SwiftPM's link names (see FuzzDriver).
@_cdecl("FuzzRPCFrame_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
