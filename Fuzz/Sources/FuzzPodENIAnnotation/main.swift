// The vpc.amazonaws.com/pod-eni annotation as the VPC resource controller (or anyone who can
// patch the pod) writes it. Bit 0 of the first byte chooses whether IPv6 is required too.
import FuzzDriver
import IPAMDProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let ipv6 = (bytes.first ?? 0) & 1 == 1
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let eni = try BranchENI.decode(annotation: text, ipv4: true, ipv6: ipv6)
        _ = eni.gatewayV4
        _ = "\(eni)"
    } catch {
        _ = error.description
    }
    // IPv6-only pods.
    if ipv6 { _ = try? BranchENI.decode(annotation: text, ipv4: false, ipv6: true) }
    return 0
}

// The entry point SwiftPM's link names (see FuzzDriver).
@_cdecl("FuzzPodENIAnnotation_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
