import CNI
import Datapath
import IPAMDProtocol
import Logging
import NetModel

/// What a run prints and how it exits. The executable only writes these out.
public struct Outcome: Sendable, Equatable {
    public var stdout: String
    public var exitCode: Int32
}

/// Environment + stdin in, outcome out: the whole CNI contract (validation order, error codes,
/// versioned output) without any process or kernel access of its own.
public struct Dispatcher {
    public typealias IPAMDFactory = (PluginConfig) -> any IPAMDClient
    public typealias LoggerFactory = (PluginConfig?, CNIEnvironment?) -> Logger

    public var makeIPAMD: IPAMDFactory
    public var datapath: any DatapathProvider
    public var makeLogger: LoggerFactory
    /// MACs for new veth ends.
    public var newMAC: () -> MACAddress

    public init(makeIPAMD: @escaping IPAMDFactory, datapath: any DatapathProvider, makeLogger: @escaping LoggerFactory,
                newMAC: @escaping () -> MACAddress = Plugin.randomMAC) {
        self.makeIPAMD = makeIPAMD; self.datapath = datapath; self.makeLogger = makeLogger; self.newMAC = newMAC
    }

    public func run(environment: [String: String], stdin: [UInt8]) -> Outcome {
        var version = CNIVersion.latest
        var logger = makeLogger(nil, nil)
        do {
            return try execute(environment: environment, stdin: stdin, version: &version, logger: &logger)
        } catch {
            logger.error("command failed", metadata: ["code": "\(error.code)", "error": "\(error)"])
            return Outcome(stdout: CNIJSON.encode(CNIErrorJSON(error, version: version)), exitCode: 1)
        }
    }

    func execute(environment: [String: String], stdin: [UInt8], version: inout String, logger: inout Logger) throws(CNIError) -> Outcome {
        let blank = stdin.allSatisfy { $0 == 0x20 || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d }
        // Nothing to decode on a blank stdin (VERSION from a runtime that sends no config).
        let decoded = blank ? nil : Result { try CNIJSON.decode(NetConf.self, from: stdin) }
        // Answers (errors included) follow the request's cniVersion when it can be read at all.
        if case .success(let c)? = decoded, let v = c.cniVersion, CNIVersion.supported.contains(v) { version = v }
        let env = try CNIEnvironment.parse(environment)
        if env.command == .version { return Outcome(stdout: VersionInfo(cniVersion: version).json, exitCode: 0) }

        let conf: NetConf
        switch decoded {
        case nil: throw CNIError(.decodeFailure, "no network configuration on stdin")
        case .success(let c)?: conf = c
        case .failure(let e)?:
            throw CNIError(.decodeFailure, "cannot decode network configuration from stdin", details: CNIJSON.describe(e))
        }
        let config = try PluginConfig.validate(conf)
        try CNIVersion.checkAllows(env.command, in: config.cniVersion)
        logger = makeLogger(config, env)
        let plugin = Plugin(env: env, config: config, ipamd: makeIPAMD(config), datapath: datapath, logger: logger, newMAC: newMAC)
        logger.debug("command start")
        switch env.command {
        case .add:
            let r = try plugin.add()
            return Outcome(stdout: r.json, exitCode: 0)
        case .del:
            try plugin.del()
        case .check:
            try plugin.check()
        case .status:
            try plugin.status()
        case .gc:
            try plugin.gc()
        case .version:
            break
        }
        return Outcome(stdout: "", exitCode: 0)
    }
}
