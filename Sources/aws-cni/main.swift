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
import SystemIO

// The only place that touches the process: environment, stdin, stdout, exit code, logging setup.

/// A runtime that went away must not kill us silently mid-DEL: writes report EPIPE instead.
signal(SIGPIPE, SIG_IGN)

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
let stdinBytes: [UInt8]
do throws(Errno) {
    stdinBytes = (command == "VERSION" && isatty(0) == 1) ? [] : try FileDescriptor.standardInput.readToEnd()
} catch {
    // Nothing was decided yet; the runtime gets a CNI error it can show.
    let e = CNIError(.ioFailure, "cannot read the network configuration from stdin", details: "\(error.text) (errno \(error.rawValue))")
    try? FileDescriptor.standardOutput.writeFully(Array(CNIJSON.encode(CNIErrorJSON(e, version: CNIVersion.latest)).utf8))
    exit(1)
}

var datapath: any DatapathProvider = LibNLDatapathProvider()
#if DEBUG
// Test hook, in debug builds only (release binaries ignore the variable): AWS_CNI_TEST_FAULT=
// count | fail:K:ERRNO | kill:K numbers this run's netlink requests and fails the K-th, or
// SIGKILLs the process right after it; the number made is reported on stderr at exit.
let faultInjector = environment["AWS_CNI_TEST_FAULT"].flatMap(FaultInjector.Plan.init).map { plan in
    FaultInjector(plan, onStop: { kill(getpid(), SIGKILL) })
}
if let faultInjector { datapath = FaultInjectingProvider(datapath, faultInjector) }
#endif

/// This run's log lines, written out once at exit (set when the config names the log file).
var logSink: LogSink?

let dispatcher = Dispatcher(
    makeIPAMD: { SocketIPAMDClient(path: $0.ipamdSocket) },
    datapath: datapath,
    makeLogger: { config, env in
        guard let config else { return Logger(label: "aws-cni", factory: { _ in SwiftLogNoOpLogHandler() }) }
        let level: Logger.Level = switch config.logLevel { case "info": .info; case "warn": .warning; case "error": .error; default: .debug }
        let sink = LogSink(path: config.logFile)
        logSink = sink
        var logger = Logger(label: "aws-cni") { JSONLinesLogHandler(label: $0, sink: sink, level: level) }
        if let env {
            logger[metadataKey: "cni.command"] = "\(env.command.rawValue)"
            logger[metadataKey: "cni.container_id"] = "\(env.containerID)"
            if let ns = env.args.podNamespace, let name = env.args.podName { logger[metadataKey: "pod"] = "\(ns)/\(name)" }
        }
        return logger
    }
)

let outcome = dispatcher.run(environment: environment, stdin: stdinBytes)
logSink?.flush()
#if DEBUG
if let faultInjector {
    try? FileDescriptor.standardError.writeFully(Array("aws-cni-test: netlink requests \(faultInjector.requests)\n".utf8))
}
#endif
if !outcome.stdout.isEmpty {
    do throws(Errno) {
        try FileDescriptor.standardOutput.writeFully(Array((outcome.stdout + "\n").utf8))
    } catch {
        // The runtime never got the answer, so it must not take this run for a success.
        try? FileDescriptor.standardError.writeFully(Array("aws-cni: cannot write the result to stdout: \(error.text) (errno \(error.rawValue))\n".utf8))
        exit(1)
    }
}
exit(outcome.exitCode)
