// The CNI network configuration on stdin (conflist entry + runtime keys + prevResult), and the
// CNI_* environment / CNI_ARGS parsed from the same bytes read as text (`KEY=VALUE` lines).
import FuzzDriver
import CNI
import CNIPlugin

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    do {
        let conf = try CNIJSON.decode(NetConf.self, from: bytes)
        if let prev = conf.prevResult { exercise(prev) }
        if let v = conf.cniVersion {
            _ = CNIVersion.isOlder(v, than: "0.4.0")
            for c in CNIEnvironment.Command.allCases { _ = try? CNIVersion.checkAllows(c, in: v) }
        }
        do {
            let cfg = try PluginConfig.validate(conf)
            if let prev = cfg.prevResult { _ = CNIJSON.encode(prev.converted(to: cfg.cniVersion)) }
        } catch {
            _ = error.description
        }
    } catch {
        _ = CNIJSON.describe(error)
    }
    // A prevResult on its own (what an earlier plugin printed).
    if let r = try? CNIJSON.decode(CNIResult.self, from: bytes) { exercise(r) }

    let text = String(decoding: bytes, as: UTF8.self)
    do { _ = try CNIArgs.parse(text) } catch { _ = error.description }
    var env: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let eq = line.firstIndex(of: "=") else { continue }
        env[String(line[..<eq])] = String(line[line.index(after: eq)...])
    }
    do { _ = try CNIEnvironment.parse(env) } catch { _ = error.description }
    return 0
}

private func exercise(_ r: CNIResult) {
    for v in CNIVersion.supported { _ = CNIJSON.encode(r.converted(to: v)) }
}

// The entry point SwiftPM's link names (see FuzzDriver).
@_cdecl("FuzzNetConf_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
