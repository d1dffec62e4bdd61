import Foundation
import IPAMDCore
import IPAMDKubernetes
import Kubernetes
import Logging

/// Connects to the API server (kubeconfig or in-cluster) and starts the pod watch and node
/// signalling. ipamd serves at once: AddNetwork waits on the cache until the first list arrives.
func startKubernetesSource(_ settings: KubernetesSettings, logger: Logger) -> KubernetesPodSource {
    let env = ProcessInfo.processInfo.environment
    do {
        let connection = try KubernetesPodSource.connection(for: settings, env: env)
        let source = try KubernetesPodSource(settings: settings, connection: connection, logger: logger)
        logger.info("kubernetes pod-ENI source", metadata: [
            "api_server": "\(connection.server)", "via": "\(connection.origin)", "node": "\(settings.nodeName)",
            "wait_timeout_s": "\(settings.waitTimeout)", "pod_eni": "\(settings.enablePodENI)",
        ])
        source.start()
        return source
    } catch {
        let variable = settings.kubeconfig != nil ? "KUBECONFIG" : "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_ACCOUNT_DIR"
        FileHandle.standardError.write(Data("ipamd: invalid configuration: \(variable): \(error)\n".utf8))
        exit(2)
    }
}
