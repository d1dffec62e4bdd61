// A Kubernetes pod watch stream: bytes arrive in chunks (split points taken from the input's
// first two bytes), are cut into lines, and every line is decoded as a WatchEvent<Pod>.
import FuzzDriver
import KubernetesWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    var splitter = LineSplitter()
    var lines: [[UInt8]] = []
    var cuts = [0, count]
    if count >= 2 {
        cuts += [Int(bytes[0]) * count / 256, Int(bytes[1]) * count / 256, count / 2]
    }
    cuts.sort()
    do {
        for i in 0..<(cuts.count - 1) { lines += try splitter.feed(bytes[cuts[i]..<cuts[i + 1]]) }
    } catch {
        _ = error.description
    }
    if let rest = splitter.remainder { lines.append(rest) }
    for line in lines {
        do {
            switch try WatchEvent<Pod>.decode(line: line) {
            case .added(let p), .modified(let p), .deleted(let p): _ = p.metadata.annotations?["vpc.amazonaws.com/pod-eni"]
            case .bookmark(let rv): _ = rv
            case .error(let s): _ = s.message
            }
        } catch {
            _ = error.description
        }
    }
    return 0
}

// The entry point SwiftPM's link names (see FuzzDriver).
@_cdecl("FuzzWatchEvent_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
