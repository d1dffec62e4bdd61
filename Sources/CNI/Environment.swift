/// The CNI_* variables, read once and checked per command as the spec requires.
public struct CNIEnvironment: Sendable, Hashable {
    public enum Command: String, Sendable, CaseIterable {
        case add = "ADD", del = "DEL", check = "CHECK", status = "STATUS", gc = "GC", version = "VERSION"
    }

    public var command: Command
    public var containerID: String
    public var netns: String
    public var ifName: String
    public var args: CNIArgs
    public var path: [String]

    public init(command: Command, containerID: String = "", netns: String = "", ifName: String = "",
                args: CNIArgs = CNIArgs(), path: [String] = []) {
        self.command = command; self.containerID = containerID; self.netns = netns
        self.ifName = ifName; self.args = args; self.path = path
    }

    /// Parses and validates. Throws code 4 naming the variable that is missing or wrong.
    public static func parse(_ env: [String: String]) throws(CNIError) -> CNIEnvironment {
        guard let raw = env["CNI_COMMAND"], !raw.isEmpty else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND is not set", details: "expected one of \(Command.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let command = Command(rawValue: raw) else {
            throw CNIError(.invalidEnvironment, "unknown CNI_COMMAND \"\(raw)\"", details: "expected one of \(Command.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var e = CNIEnvironment(command: command)
        e.containerID = env["CNI_CONTAINERID"] ?? ""
        e.netns = env["CNI_NETNS"] ?? ""
        e.ifName = env["CNI_IFNAME"] ?? ""
        e.path = (env["CNI_PATH"] ?? "").split(separator: ":").map(String.init)
        e.args = try CNIArgs.parse(env["CNI_ARGS"] ?? "")

        // Same requirements as libcni's skel: DEL may come without a netns (container already gone).
        var required: [String] = []
        switch command {
        case .add, .check: required = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]
        case .del: required = ["CNI_CONTAINERID", "CNI_IFNAME"]
        case .status, .gc, .version: required = []
        }
        let missing = required.filter { (env[$0] ?? "").isEmpty }
        if !missing.isEmpty {
            throw CNIError(.invalidEnvironment, "required environment variable\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")) not set for \(command.rawValue)")
        }
        if !e.ifName.isEmpty && (e.ifName.utf8.count > 15 || e.ifName.contains("/") || e.ifName == "." || e.ifName == "..") {
            throw CNIError(.invalidEnvironment, "CNI_IFNAME \"\(e.ifName)\" is not a valid interface name")
        }
        return e
    }
}

/// CNI_ARGS: `K=V;K=V`. Only the Kubernetes keys are used; unknown keys are ignored.
public struct CNIArgs: Sendable, Hashable {
    public var podName: String?
    public var podNamespace: String?
    public var infraContainerID: String?
    public var podUID: String?

    public init(podName: String? = nil, podNamespace: String? = nil, infraContainerID: String? = nil, podUID: String? = nil) {
        self.podName = podName; self.podNamespace = podNamespace; self.infraContainerID = infraContainerID; self.podUID = podUID
    }

    public static func parse(_ text: String) throws(CNIError) -> CNIArgs {
        var a = CNIArgs()
        for pair in text.split(separator: ";") where !pair.isEmpty {
            guard let eq = pair.firstIndex(of: "=") else {
                throw CNIError(.invalidEnvironment, "CNI_ARGS: \"\(pair)\" is not KEY=VALUE")
            }
            let k = String(pair[..<eq]), v = String(pair[pair.index(after: eq)...])
            switch k {
            case "K8S_POD_NAME": a.podName = v
            case "K8S_POD_NAMESPACE": a.podNamespace = v
            case "K8S_POD_INFRA_CONTAINER_ID": a.infraContainerID = v
            case "K8S_POD_UID": a.podUID = v
            default: continue
            }
        }
        return a
    }

    /// Kubelet passes namespace and name; containerd's `ctr` passes neither.
    public var hasPodIdentity: Bool { !(podName ?? "").isEmpty && !(podNamespace ?? "").isEmpty }
}
