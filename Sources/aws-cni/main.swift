#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CNI
import CNIPlugin
import Datapath
import IPAMDProtocol
import Logging

// The only place that touches the process: environment, stdin, stdout, exit code, logging setup.

func readStdin() -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, 65536) }
        if n > 0 { out += buf[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        return out
    }
}

func processEnvironment() -> [String: String] {
    var env: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return env
}

let environment = processEnvironment()
let command = environment["CNI_COMMAND"] ?? ""
// VERSION and STATUS need no config from stdin beyond the version; skip reading a tty.
let stdinBytes = (command == "VERSION" && isatty(0) == 1) ? [] : readStdin()

let dispatcher = Dispatcher(
    makeIPAMD: { SocketIPAMDClient(path: $0.ipamdSocket) },
    datapath: LibNLDatapathProvider(),
    makeLogger: { config, env in
        guard let config else { return Logger(label: "aws-cni", factory: { _ in SwiftLogNoOpLogHandler() }) }
        let level: Logger.Level = switch config.logLevel { case "info": .info; case "warn": .warning; case "error": .error; default: .debug }
        var logger = Logger(label: "aws-cni") { JSONLinesLogHandler(label: $0, path: config.logFile, level: level) }
        if let env {
            logger[metadataKey: "cni.command"] = "\(env.command.rawValue)"
            logger[metadataKey: "cni.container_id"] = "\(env.containerID)"
            if let ns = env.args.podNamespace, let name = env.args.podName { logger[metadataKey: "pod"] = "\(ns)/\(name)" }
        }
        return logger
    }
)

let outcome = dispatcher.run(environment: environment, stdin: stdinBytes)
if !outcome.stdout.isEmpty {
    let bytes = Array((outcome.stdout + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + off, bytes.count - off) }
        if n <= 0 { break }
        off += n
    }
}
exit(outcome.exitCode)
